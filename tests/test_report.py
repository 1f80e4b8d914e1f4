"""benchmarks/report.py on small made-up pytest-benchmark JSON: the contender tables of bench_contenders.py (every
contender's median, its ratio to the eager reference of the same group, GB/s, % of copy bandwidth, ns per normal) and
the backend tables of bench_posterior.py."""

import importlib.util
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_report():
    spec = importlib.util.spec_from_file_location("report", os.path.join(ROOT, "benchmarks", "report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench(group, median, rounds=10, **info):
    return {"group": group, "name": f"test[{info.get('contender') or info.get('backend')}]",
            "stats": {"median": median, "min": median * 0.9, "rounds": rounds}, "extra_info": info}


def contender(group, name, median, rank, **extra):
    info = {"op": "posterior_sample", "shape": [2, 3, 4, 4], "contender": name, "reference": "reference",
            "rank": rank, "bytes": 1200, "device": "cpu", "dtype": "float32"}
    info.update(extra)
    return bench(group, median, **info)


def synthetic():
    g = "posterior_sample 2x3x4x4 fp32 cpu"
    h = "ddpm_step 2x3x4x4 fp32 cpu"
    return {
        "machine_info": {"cpu": {"brand_raw": "Test CPU"}, "torch_num_threads": 1, "cpu_count": 2},
        "commit_info": {"id": "0123456789abcdef", "dirty": False, "branch": "main"},
        "benchmarks": [  # out of order: the report orders rows by rank, the reference first
            contender(g, "copy (limit)", 1e-6, 5, limit="copy"),
            contender(g, "fastddgan", 4e-6, 0),
            contender(g, "noise (limit)", 2e-6, 6, limit="noise", normals=96, bytes=384),
            contender(g, "reference", 12e-6, 2),
            contender(g, "fastddgan noise=", 3e-6, 1),
            contender(h, "reference", 10e-6, 2, op="ddpm_step"),
            contender(h, "diffusers", 20e-6, 5, op="ddpm_step"),
            {"group": h, "name": "no timings", "stats": None, "extra_info": {}},
        ],
    }


def table_rows(text, group):
    lines = text.splitlines()
    start = lines.index(f"## {group}")
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))])  # not at \|
    return rows


def test_contender_table():
    report = load_report()
    text = report.render(synthetic(), source="x.json")
    header, *rows = table_rows(text, "posterior_sample 2x3x4x4 fp32 cpu")
    assert header == ["Contender", "Median", "Min", "Rounds", "Speed-up vs reference", "GB/s", "% of copy",
                      "ns/normal"]
    names = [row[0] for row in rows]
    assert names == ["reference", "fastddgan", "fastddgan noise=", "copy (limit)", "noise (limit)"]
    by_name = {row[0]: dict(zip(header, row)) for row in rows}
    assert by_name["reference"]["Median"] == "12.0 µs" and by_name["reference"]["Speed-up vs reference"] == "1.00x"
    assert by_name["fastddgan"]["Speed-up vs reference"] == "3.00x"
    assert by_name["fastddgan noise="]["Speed-up vs reference"] == "4.00x"
    assert by_name["fastddgan"]["GB/s"] == "0.30"  # 1200 bytes / 4 µs
    assert by_name["copy (limit)"]["GB/s"] == "1.20" and by_name["copy (limit)"]["% of copy"] == "100%"
    assert by_name["fastddgan"]["% of copy"] == "25%"  # 0.30 / 1.20 GB/s
    assert by_name["noise (limit)"]["ns/normal"] == "20.83"  # 2 µs / 96 normals
    assert by_name["fastddgan"]["ns/normal"] == "—"
    assert "% of copy = " in text

    # A group without a copy row has no "% of copy" column; diffusers is slower than the reference there.
    header, *rows = table_rows(text, "ddpm_step 2x3x4x4 fp32 cpu")
    assert "% of copy" not in header and "ns/normal" not in header
    assert [row[0] for row in rows] == ["reference", "diffusers"]
    assert dict(zip(header, rows[1]))["Speed-up vs reference"] == "0.50x"

    # The summary: one line per (op, shape), every contender's ratio to that group's own reference.
    summary = text.split("## Summary", 1)[1].split("## ", 1)[0]
    line = next(line for line in summary.splitlines() if line.startswith("| posterior_sample"))
    assert "| 12.0 µs |" in line and "3.00x" in line and "4.00x" in line and "12.00x" in line
    line = next(line for line in summary.splitlines() if line.startswith("| ddpm_step"))
    assert "| 10.0 µs |" in line and "0.50x" in line


def test_backend_table_unchanged():
    """bench_posterior.py's groups (rows named by ``backend``, no copy row): the columns they always had."""
    report = load_report()
    g = "posterior_sample 64x1x32x32 fp32 cpu"
    data = {"benchmarks": [bench(g, 2e-6, backend="cpp", bytes=4000), bench(g, 4e-6, backend="torch", bytes=4000)]}
    header, *rows = table_rows(report.render(data), g)
    assert header == ["Backend", "Median", "Min", "Rounds", "Speed-up vs torch", "GB/s"]
    assert [row[0] for row in rows] == ["torch", "cpp"] and rows[1][4] == "2.00x" and rows[1][5] == "2.00"


def test_main(tmp_path, capsys):
    report = load_report()
    src, out = tmp_path / "r.json", tmp_path / "r.md"
    src.write_text(json.dumps(synthetic()))
    assert report.main([str(src), "--out-md", str(out)]) == 0
    assert "## posterior_sample 2x3x4x4 fp32 cpu" in out.read_text()
    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert report.main([str(empty)]) == 1
    (tmp_path / "none.json").write_text(json.dumps({"benchmarks": []}))
    assert report.main([str(tmp_path / "none.json")]) == 1
    assert "no benchmark timings" in capsys.readouterr().err


def test_sampling_option_rows_show_the_first_call_and_the_difference_to_the_reference():
    """Rows with extra_info first_call_s / max_abs_diff (bench_sampling's CPU options) add two columns; a row
    without them shows a dash."""
    report = load_report()
    g = "cpu-options ddgan mnist-cpu T=4 n=64 cpu"

    def option(name, median, **extra):
        return bench(g, median, backend=name, reference="fp32", images=64, nfe=4, T=4, op="sample", **extra)

    data = {"benchmarks": [option("bf16", 0.4, first_call_s=0.5, max_abs_diff=0.0625),
                           option("fp32", 0.6, first_call_s=0.7),
                           option("compile", 0.5, first_call_s=61.0, max_abs_diff=3e-6)]}
    rows = table_rows(report.render(data), g)
    header = rows[0]
    assert header[-2:] == ["first call", r"max \|diff\| vs fp32"]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["fp32"][-2:] == ["700.000 ms", "—"]
    assert by_name["compile"][-2:] == ["61.000 s", "3e-06"] and by_name["bf16"][-1] == "0.0625"
    assert by_name["bf16"][4] == "1.50x"
