"""benchmarks/gpu_check.py, so that it works on its first GPU run: the dry run on the CPU (the GPU parts skipped, the
test and benchmark selections collected, report.py and a two-step training run, both summaries written), and a
part past its timeout killed with its whole process group and reported."""

import importlib.util
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.py")


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, SCRIPT, "--dry-run", "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    machine = summary["machine"]
    assert summary["status"] == "passed" and machine["dry_run"] is True and machine["torch"]
    assert machine["date"].startswith("20") and machine["device_name"]
    parts = {p["part"]: p for p in summary["parts"]}
    assert list(parts) == ["build", "tests", "benchmarks", "bandwidth", "train"]
    assert parts["build"]["status"] == "skipped" and "pip install" in parts["build"]["details"]
    assert all(parts[name]["status"] == "passed" for name in ("tests", "benchmarks", "bandwidth", "train"))
    assert "posterior_sample cpp" in parts["bandwidth"]["details"]  # the script's rows, on the CPU
    assert int(parts["tests"]["details"].split()[2]) > 0  # "dry run: N tests collected"
    assert parts["benchmarks"]["benchmarks"] == 2  # the made-up results, through report.py
    assert "| posterior_sample dry run |" in (out / "benchmarks.md").read_text()
    assert parts["train"]["last_log"]["step"] == 2
    md = (out / "summary.md").read_text()
    assert "(dry run)" in md and all(f"| {name} |" in md for name in parts)
    for log in ("tests.log", "benchmarks.log", "report.log", "train.log"):
        assert (out / log).read_text().startswith("$ ")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_a_part_past_its_timeout_is_killed_with_its_children(tmp_path, monkeypatch):
    gpu_check = load_script()
    monkeypatch.setitem(gpu_check.TIMEOUTS, "tests", 1.0)
    check = gpu_check.Check(str(tmp_path), budget=60.0, dry_run=True)
    pid_file = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    start = time.monotonic()
    entry = check.record(check.run("tests", [sys.executable, "-c", code]))
    assert entry["status"] == "timeout" and entry["returncode"] is None and time.monotonic() - start < 30
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
    check.skip("train", "no time left in the budget")
    summary = gpu_check.write_summary(check, {"dry_run": True, "device_name": "cpu", "date": "now", "torch": "x",
                                              "cuda_runtime": None, "python": "3"}, 60.0, start)
    assert summary["status"] == "failed: tests"
    assert "| tests | timeout |" in (tmp_path / "summary.md").read_text()
