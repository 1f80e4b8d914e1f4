#!/usr/bin/env python
"""Markdown report of a pytest-benchmark JSON file.

    pytest --benchmark-only benchmarks --benchmark-json=benchmarks/results/NAME.json
    python benchmarks/report.py benchmarks/results/NAME.json --out-md benchmarks/results/NAME.md

For every benchmark group (one op, shape, dtype and device) it lists each backend's median time, its speed-up over
the eager reference backend (``torch`` by default) measured in the same run, and the achieved bandwidth
``extra_info["bytes"] / median`` (the op's minimum traffic, so a lower bound on what the hardware moved).
Sampling benchmarks (``bench_sampling.py``) name their group's reference row in ``extra_info["reference"]`` (it
overrides ``--baseline`` for that group) and give ``extra_info["images"]`` per call (-> images/s) and
``extra_info["nfe"]`` (network evaluations per sample).
Contender benchmarks (``bench_contenders.py``) name each row ``extra_info["contender"]`` (it overrides ``backend``)
and order it by ``extra_info["rank"]``; a row with ``extra_info["limit"] == "copy"`` (a copy of the same bytes) adds
the column "% of copy" (each row's GB/s over the copy's), and rows with ``extra_info["normals"]`` add "ns/normal".
Rows with ``extra_info["first_call_s"]`` (the untimed first call: compilation) or ``["max_abs_diff"]`` (against the
reference row's output) add those columns.
Only the standard library is used, so the script runs anywhere the JSON is.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import OrderedDict
from typing import Dict, List, Optional

BACKEND_ORDER = ("torch", "cpp", "cuda", "triton")


def format_time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e9:.0f} ns"


def _backend_key(name: str):
    return (BACKEND_ORDER.index(name) if name in BACKEND_ORDER else len(BACKEND_ORDER), name)


def _backend(bench: dict) -> str:
    info = bench.get("extra_info") or {}
    for key in ("contender", "backend"):
        if key in info:
            return str(info[key])
    params = bench.get("params") or {}
    return str(params.get("backend", bench.get("name", "?")))


def _info(bench: dict) -> dict:
    return bench.get("extra_info") or {}


def _reference(rows: List[dict]) -> Optional[str]:
    """The group's own reference row (``extra_info["reference"]``), if its benchmarks name one."""
    return next((str(_info(b)["reference"]) for b in rows if _info(b).get("reference")), None)


def group_baseline(rows: List[dict], default: str) -> str:
    return _reference(rows) or default


def _row_key(bench: dict, reference: Optional[str]):
    name = _backend(bench)
    nfe, rank = _info(bench).get("nfe"), _info(bench).get("rank")
    return (name != reference, _backend_key(name)[0], rank if isinstance(rank, (int, float)) else 0,
            -nfe if isinstance(nfe, (int, float)) else 0, name)


def group_benchmarks(benchmarks: List[dict]) -> "OrderedDict[str, List[dict]]":
    groups: "OrderedDict[str, List[dict]]" = OrderedDict()
    for bench in benchmarks:
        groups.setdefault(bench.get("group") or bench.get("name", "?"), []).append(bench)
    for rows in groups.values():
        reference = _reference(rows)
        rows.sort(key=lambda b: _row_key(b, reference))
    return groups


def images_per_second(bench: dict) -> Optional[float]:
    images, median = _info(bench).get("images"), bench["stats"]["median"]
    return images / median if images and median > 0 else None


def format_rate(rate: Optional[float]) -> str:
    if rate is None:
        return "n/a"
    return f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"


def _cell(value) -> str:
    return "—" if value in (None, "", []) else str(value).replace("|", "\\|")


def machine_section(data: dict) -> List[str]:
    mi = data.get("machine_info") or {}
    cpu = mi.get("cpu") or {}
    ci = data.get("commit_info") or {}
    cuda = mi.get("cuda") or None
    cuda_desc = None
    if cuda:
        cuda_desc = f"{cuda.get('name')} (sm_{str(cuda.get('capability', '')).replace('.', '')}, " \
                    f"{cuda.get('memory_gib')} GiB, CUDA {cuda.get('cuda_version')})"
    elif mi.get("cuda_device_name"):
        cuda_desc = mi["cuda_device_name"]
    commit = ci.get("id")
    if commit:
        commit = commit[:12] + (" (dirty)" if ci.get("dirty") else "") + (f" on {ci['branch']}" if ci.get("branch") else "")
    rows = [
        ("Node", mi.get("node")),
        ("CPU", cpu.get("brand_raw") or mi.get("processor")),
        ("CPU cores (os.cpu_count)", mi.get("cpu_count") or cpu.get("count")),
        ("torch threads", mi.get("torch_num_threads")),
        ("GPU", cuda_desc or "none"),
        ("Python", f"{mi.get('python_implementation', '')} {mi.get('python_version', '')}".strip() or None),
        ("torch", mi.get("torch_version")),
        ("fastddgan", mi.get("fastddgan_version")),
        ("OS", mi.get("platform") or mi.get("system")),
        ("Commit", commit),
        ("Date", mi.get("date") or data.get("datetime")),
        ("pytest-benchmark", data.get("version")),
    ]
    lines = ["| | |", "|---|---|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in rows]
    return lines


def bandwidth(bench: dict) -> Optional[float]:
    """Bytes per second: ``extra_info["bytes"]`` / median, or None without bytes."""
    nbytes, median = _info(bench).get("bytes"), bench["stats"]["median"]
    return nbytes / median if nbytes and median > 0 else None


def copy_bandwidth(rows: List[dict]) -> Optional[float]:
    """The bandwidth of the group's copy row (``extra_info["limit"] == "copy"``), if it has one."""
    copy = next((b for b in rows if _info(b).get("limit") == "copy"), None)
    return bandwidth(copy) if copy else None


def group_table(rows: List[dict], baseline: str) -> List[str]:
    base = next((b for b in rows if _backend(b) == baseline), None)
    base_median = base["stats"]["median"] if base else None
    show_images = any(_info(b).get("images") for b in rows)
    show_nfe = any(_info(b).get("nfe") for b in rows)
    show_bytes = any(_info(b).get("bytes") for b in rows) or not (show_images or show_nfe)
    copy_rate = copy_bandwidth(rows) if show_bytes else None
    show_normals = any(_info(b).get("normals") for b in rows)
    show_first_call = any("first_call_s" in _info(b) for b in rows)
    show_diff = any("max_abs_diff" in _info(b) for b in rows)
    first = "Contender" if any("contender" in _info(b) for b in rows) else "Backend"
    header = [first, "Median", "Min", "Rounds", f"Speed-up vs {baseline}"]
    header += (["images/s"] if show_images else []) + (["NFE"] if show_nfe else []) + (["GB/s"] if show_bytes else [])
    header += (["% of copy"] if copy_rate else []) + (["ns/normal"] if show_normals else [])
    header += (["first call"] if show_first_call else []) + ([f"max \\|diff\\| vs {baseline}"] if show_diff else [])
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for bench in rows:
        stats = bench["stats"]
        median = stats["median"]
        info = _info(bench)
        speedup = f"{base_median / median:.2f}x" if base_median and median > 0 else "n/a"
        cells = [_backend(bench), format_time(median), format_time(stats["min"]), str(stats["rounds"]), speedup]
        if show_images:
            cells.append(format_rate(images_per_second(bench)))
        if show_nfe:
            cells.append(_cell(info.get("nfe")))
        rate = bandwidth(bench)
        if show_bytes:
            cells.append(f"{rate / 1e9:.2f}" if rate else "n/a")
        if copy_rate:
            cells.append(f"{100 * rate / copy_rate:.0f}%" if rate else "n/a")
        if show_normals:
            normals = info.get("normals")
            cells.append(f"{median / normals * 1e9:.2f}" if normals else "—")
        if show_first_call:
            first_call = info.get("first_call_s")
            cells.append(format_time(first_call) if first_call is not None else "—")
        if show_diff:
            diff = info.get("max_abs_diff")
            cells.append(f"{diff:.3g}" if diff is not None else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def summary_table(groups: "OrderedDict[str, List[dict]]", baseline: str) -> List[str]:
    """One table per baseline (groups whose speed-ups share a reference row name), one line per group; with
    ``extra_info["images"]``, the baseline's images/s and every backend's images/s next to its speed-up."""
    parts: "OrderedDict[str, OrderedDict[str, List[dict]]]" = OrderedDict()
    for group, rows in groups.items():
        parts.setdefault(group_baseline(rows, baseline), OrderedDict())[group] = rows
    lines: List[str] = []
    for base_name, part in parts.items():
        if lines:
            lines.append("")
        lines += _summary_part(part, base_name)
    return lines


def _summary_part(groups: "OrderedDict[str, List[dict]]", baseline: str) -> List[str]:
    all_rows = [b for rows in groups.values() for b in rows]
    order = {}
    for rows in groups.values():
        for i, bench in enumerate(rows):
            order.setdefault(_backend(bench), (i, _backend_key(_backend(bench))))
    backends = sorted({_backend(b) for b in all_rows} - {baseline}, key=lambda name: order[name])
    rates = any(_info(b).get("images") for b in all_rows)
    header = f"| Group | {baseline} median | " + (f"{baseline} images/s | " if rates else "")
    header += " | ".join(f"{name} speed-up" + (" (images/s)" if rates else "") for name in backends) + " |"
    lines = [header, "|---|---:|" + ("---:|" if rates else "") + "---:|" * len(backends)]
    for group, rows in groups.items():
        by_name: Dict[str, dict] = {_backend(b): b for b in rows}
        base: Optional[dict] = by_name.get(baseline)
        base_median = base["stats"]["median"] if base else None
        cells = []
        for name in backends:
            bench = by_name.get(name)
            if bench is None:
                cells.append("—")
            elif base_median:
                rate = f" ({format_rate(images_per_second(bench))})" if rates else ""
                cells.append(f"{base_median / bench['stats']['median']:.2f}x{rate}")
            else:
                cells.append("n/a")
        first = [group, format_time(base_median) if base_median else "—"]
        if rates:
            first.append(format_rate(images_per_second(base)) if base else "—")
        lines.append("| " + " | ".join(first + cells) + " |")
    return lines


def render(data: dict, baseline: str = "torch", source: str = "") -> str:
    benchmarks = [b for b in data.get("benchmarks", []) if b.get("stats")]
    groups = group_benchmarks(benchmarks)
    out = ["# fastddgan benchmarks", ""]
    if source:
        out += [f"Source: `{source}`", ""]
    out += machine_section(data) + [""]
    has_bytes = any(_info(b).get("bytes") for b in benchmarks)
    has_images = any(_info(b).get("images") for b in benchmarks)
    references = sorted({group_baseline(rows, baseline) for rows in groups.values()})
    ref_text = ", ".join(f"`{name}`" for name in references)
    if references == [baseline]:
        text = (f"Times are per call (median over rounds). Speed-up = median of the eager `{baseline}` reference / "
                "median of the backend, both from this run.")
    else:
        text = (f"Times are per call (median over rounds). Speed-up = median of the group's reference row "
                f"({ref_text}) / median of the row, both from this run.")
    if has_bytes or not has_images:
        text += (" GB/s = minimum bytes moved (`extra_info.bytes`: inputs read + output written, noise generated "
                 "in-kernel) / median.")
    if any(_info(b).get("limit") == "copy" for b in benchmarks):
        text += (" % of copy = the row's GB/s / the GB/s of the group's copy of the same bytes (the memory limit); "
                 "ns/normal = median / normals drawn.")
    if has_images:
        text += (" images/s = images per call (`extra_info.images`) / median; NFE = network evaluations per "
                 "sample.")
    out += [text, "", "## Summary", ""]
    out += summary_table(groups, baseline) + [""]
    for group, rows in groups.items():
        info = rows[0].get("extra_info") or {}
        out += [f"## {group}", ""]
        if info.get("images"):
            shape = "x".join(str(n) for n in info.get("sample_shape", []))
            ts = sorted({_info(b).get("T") for b in rows if _info(b).get("T") is not None})
            t_text = f"T={ts[0]}" if len(ts) == 1 else "T=" + "/".join(str(t) for t in ts)
            out += [f"op `{info.get('op', '?')}`, preset `{info.get('preset', '?')}` ({shape}), {t_text}, "
                    f"{info['images']} image{'s' if info['images'] != 1 else ''} per call, {info.get('dtype', '?')}, device "
                    f"{info.get('device_name') or info.get('device', '?')}, fused kernels: "
                    f"{info.get('kernel_backend', '?')}", ""]
        elif info:
            shape = "x".join(str(n) for n in info.get("shape", []))
            out += [f"op `{info.get('op', '?')}`, shape {shape}, {info.get('dtype', '?')}, device "
                    f"{info.get('device_name') or info.get('device', '?')}, {info.get('bytes', 0) / 1e6:.1f} MB moved "
                    "per call", ""]
        out += group_table(rows, group_baseline(rows, baseline)) + [""]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="JSON written by pytest --benchmark-only --benchmark-json=FILE")
    parser.add_argument("--out-md", metavar="FILE", help="write the Markdown here (default: stdout)")
    parser.add_argument("--baseline", default="torch", help="backend the speed-ups are relative to (default: torch)")
    args = parser.parse_args(argv)

    try:
        with open(args.results, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as err:  # pytest-benchmark leaves the file empty when benchmarks are disabled
        print(f"{args.results}: cannot read a pytest-benchmark JSON ({err}); was pytest run with "
              "--benchmark-only?", file=sys.stderr)
        return 1
    if not any(b.get("stats") for b in data.get("benchmarks", [])):
        print(f"{args.results}: no benchmark timings (was pytest run with --benchmark-disable, or without "
              "--benchmark-only/--benchmark-enable?)", file=sys.stderr)
        return 1
    text = render(data, baseline=args.baseline, source=args.results)
    if args.out_md:
        with open(args.out_md, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(f"wrote {args.out_md}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
