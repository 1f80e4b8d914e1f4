#!/usr/bin/env python
"""Markdown report of a pytest-benchmark JSON file.

    pytest --benchmark-only benchmarks --benchmark-json=benchmarks/results/NAME.json
    python benchmarks/report.py benchmarks/results/NAME.json --out-md benchmarks/results/NAME.md

For every benchmark group (one op, shape, dtype and device) it lists each backend's median time, its speed-up over
the eager reference backend (``torch`` by default) measured in the same run, and the achieved bandwidth
``extra_info["bytes"] / median`` (the op's minimum traffic, so a lower bound on what the hardware moved).
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
    if "backend" in info:
        return str(info["backend"])
    params = bench.get("params") or {}
    return str(params.get("backend", bench.get("name", "?")))


def group_benchmarks(benchmarks: List[dict]) -> "OrderedDict[str, List[dict]]":
    groups: "OrderedDict[str, List[dict]]" = OrderedDict()
    for bench in benchmarks:
        groups.setdefault(bench.get("group") or bench.get("name", "?"), []).append(bench)
    for rows in groups.values():
        rows.sort(key=lambda b: _backend_key(_backend(b)))
    return groups


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


def group_table(rows: List[dict], baseline: str) -> List[str]:
    base = next((b for b in rows if _backend(b) == baseline), None)
    base_median = base["stats"]["median"] if base else None
    lines = [
        f"| Backend | Median | Min | Rounds | Speed-up vs {baseline} | GB/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for bench in rows:
        stats = bench["stats"]
        median = stats["median"]
        info = bench.get("extra_info") or {}
        speedup = f"{base_median / median:.2f}x" if base_median and median > 0 else "n/a"
        gbps = f"{info['bytes'] / median / 1e9:.2f}" if info.get("bytes") and median > 0 else "n/a"
        lines.append(f"| {_backend(bench)} | {format_time(median)} | {format_time(stats['min'])} | "
                     f"{stats['rounds']} | {speedup} | {gbps} |")
    return lines


def summary_table(groups: "OrderedDict[str, List[dict]]", baseline: str) -> List[str]:
    backends = sorted({_backend(b) for rows in groups.values() for b in rows} - {baseline}, key=_backend_key)
    lines = [f"| Group | {baseline} median | " + " | ".join(f"{name} speed-up" for name in backends) + " |",
             "|---|---:|" + "---:|" * len(backends)]
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
                cells.append(f"{base_median / bench['stats']['median']:.2f}x")
            else:
                cells.append("n/a")
        lines.append(f"| {group} | {format_time(base_median) if base_median else '—'} | " + " | ".join(cells) + " |")
    return lines


def render(data: dict, baseline: str = "torch", source: str = "") -> str:
    benchmarks = [b for b in data.get("benchmarks", []) if b.get("stats")]
    groups = group_benchmarks(benchmarks)
    out = ["# fastddgan benchmarks", ""]
    if source:
        out += [f"Source: `{source}`", ""]
    out += machine_section(data) + [""]
    out += [
        f"Times are per call (median over rounds). Speed-up = median of the eager `{baseline}` reference / median of "
        "the backend, both from this run. GB/s = minimum bytes moved (`extra_info.bytes`: inputs read + output "
        "written, noise generated in-kernel) / median.",
        "",
        "## Summary",
        "",
    ]
    out += summary_table(groups, baseline) + [""]
    for group, rows in groups.items():
        info = rows[0].get("extra_info") or {}
        out += [f"## {group}", ""]
        if info:
            shape = "x".join(str(n) for n in info.get("shape", []))
            out += [f"op `{info.get('op', '?')}`, shape {shape}, {info.get('dtype', '?')}, device "
                    f"{info.get('device_name') or info.get('device', '?')}, {info.get('bytes', 0) / 1e6:.1f} MB moved "
                    "per call", ""]
        out += group_table(rows, baseline) + [""]
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
