#!/usr/bin/env python
"""Is bf16 sampling faster on this CPU, and on CPUs without native bf16? The CPU preset's DDGAN (T = 4, n = 64,
untrained weights: speed only) sampled in fp32 and under bf16 autocast, with oneDNN limited to each instruction
set in turn (``ONEDNN_MAX_CPU_ISA``, read once per process, so one subprocess per setting): the default (all the
CPU has, e.g. AMX or AVX512_BF16), AVX512_CORE_BF16 (AVX-512 with bf16 instructions, no AMX tiles), AVX512_CORE
(AVX-512 without bf16 instructions) and AVX2.

    OMP_NUM_THREADS=1 python benchmarks/bf16_by_isa.py [--calls 5]

Prints seconds per sampling call (median of ``--calls`` after a warm-up call) for each setting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ISAS = ("default", "AVX512_CORE_BF16", "AVX512_CORE", "AVX2")

_CHILD = """
import json, sys, time, torch
import fastddgan
from fastddgan.checkpoint import from_preset
torch.manual_seed(0)
model = from_preset("ddgan", "mnist-cpu", 4)
calls = int(sys.argv[1])
out = {}
for dtype in ("fp32", "bf16"):
    run = lambda: fastddgan.sample(model, n=64, seed=1, cuda_graph=False, dtype=dtype)
    run()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    out[dtype] = sorted(times)[calls // 2]
print(json.dumps(out))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=5)
    args = p.parse_args(argv)
    print("| oneDNN ISA | fp32 s/call | bf16 s/call | bf16 speed-up |\n|---|---:|---:|---:|")
    for isa in ISAS:
        env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
        if isa != "default":
            env["ONEDNN_MAX_CPU_ISA"] = isa
        run = subprocess.run([sys.executable, "-c", _CHILD, str(args.calls)], env=env, capture_output=True,
                             text=True, check=True)
        t = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"| {isa} | {t['fp32']:.3f} | {t['bf16']:.3f} | {t['fp32'] / t['bf16']:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
