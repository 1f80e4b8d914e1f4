#!/usr/bin/env python
"""Device bandwidth of the fused posterior draw and DDPM step at sizes where launch and host costs vanish.

    python benchmarks/gpu_bandwidth.py --out DIR            # on a GPU: DIR/bandwidth.json and DIR/bandwidth.md
    python benchmarks/gpu_bandwidth.py --out DIR --device cpu --elements 65536   # the logic, anywhere (a test)

pytest-benchmark's per-call timings (``bench_posterior.py``) include the host side of each call (~60 µs per call
on the first GPU machine, more than the kernel itself at those shapes). Here each row is timed with CUDA events
around ``--iters`` back-to-back calls after warm-up, so the figure is the device time per call. Bytes moved are
the op's minimum traffic: two inputs read and one output written (the noise is drawn in-kernel by the fused
backends; the eager ``torch`` reference also writes and reads its ``torch.randn`` noise, not counted). The limits
beside them: a device-to-device copy (``out.copy_(x)``: one read, one write) measured in the same run, and the
card's HBM specification when the device is known (H200: 4.8 TB/s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from typing import Callable, Dict, List

import torch

import fastddgan
from fastddgan import Schedule, ops

SPEC_TBPS = {"H200": 4.8, "H100": 3.35, "A100": 2.0}  # HBM bandwidth of the card's datasheet, TB/s


def spec_tbps(name: str):
    return next((v for k, v in SPEC_TBPS.items() if k in name), None)


def device_seconds(fn: Callable[[], object], device: torch.device, iters: int, warmup: int = 3) -> float:
    """Device time per call of ``fn`` (CUDA events around ``iters`` calls; wall clock on a CPU)."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / iters
    begin = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - begin) / iters


def measure(device: torch.device, elements: List[int], iters: int) -> List[Dict]:
    rows = []
    s_post, s_ddpm = Schedule.ddgan(4), Schedule.linear(1000)
    backends = ["torch"] + [name for name in ops.available(device.type) if name != "torch"]
    for n in elements:
        batch = 64
        x0 = torch.randn(batch, n // batch, device=device)
        x_t = torch.randn_like(x0)
        t_post = torch.randint(0, 4, (batch,), device=device)
        t_ddpm = torch.randint(0, 1000, (batch,), device=device)
        out = torch.empty_like(x0)
        moved = 3 * x0.numel() * x0.element_size()
        rows.append({"op": "copy", "backend": "torch", "elements": x0.numel(), "bytes": 2 * x0.numel() * 4,
                     "seconds": device_seconds(lambda: out.copy_(x0), device, iters)})
        for backend in backends:
            with ops.use_backend(backend):
                for op, fn in (("posterior_sample", lambda: ops.posterior_sample(x0, x_t, t_post, s_post)),
                               ("ddpm_step", lambda: ops.ddpm_step(x0, x_t, t_ddpm, s_ddpm))):
                    rows.append({"op": op, "backend": backend, "elements": x0.numel(), "bytes": moved,
                                 "seconds": device_seconds(fn, device, iters)})
    for row in rows:
        row["gbps"] = row["bytes"] / row["seconds"] / 1e9
    return rows


def markdown(info: Dict, rows: List[Dict]) -> str:
    spec = info.get("spec_tbps")
    lines = [f"# Device bandwidth of the fused ops: {info['device_name']}", "",
             f"{info['date']}, torch {info['torch']}, fastddgan {info['fastddgan']}, float32, "
             f"{info['iters']} calls per row timed with CUDA events after 3 warm-up calls. GB/s = minimum bytes "
             "moved (two inputs read, one output written; copy: one read, one write) / device time per call. "
             f"HBM specification: {spec or 'unknown'} TB/s.", "",
             "| Op | Backend | Elements | Device time | GB/s | of copy | of spec |", "|---|---|---:|---:|---:|---:|---:|"]
    copy = {r["elements"]: r["gbps"] for r in rows if r["op"] == "copy"}
    for r in rows:
        of_spec = f"{r['gbps'] / (spec * 1e3):.0%}" if spec else "-"
        lines.append(f"| {r['op']} | {r['backend']} | {r['elements']:,} | {r['seconds'] * 1e6:.1f} µs | "
                     f"{r['gbps']:.0f} | {r['gbps'] / copy[r['elements']]:.0%} | {of_spec} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (bandwidth.json, bandwidth.md)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--elements", default="16777216,268435456",
                        help="comma-separated element counts per tensor (default 2^24 and 2^28: 64 MB, 1 GB)")
    parser.add_argument("--iters", type=int, default=20)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_bandwidth: no CUDA device; pass --device cpu to check the script", file=sys.stderr)
        return 2
    elements = [int(e) for e in args.elements.split(",")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__,
            "fastddgan": fastddgan.__version__, "device_name": name, "spec_tbps": spec_tbps(name),
            "iters": args.iters}
    rows = measure(device, elements, args.iters)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bandwidth.json"), "w") as f:
        json.dump({"machine": info, "rows": rows}, f, indent=1)
    text = markdown(info, rows)
    with open(os.path.join(args.out, "bandwidth.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
