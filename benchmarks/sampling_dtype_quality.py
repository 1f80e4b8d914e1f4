#!/usr/bin/env python
"""Does sampling under bf16 autocast cost quality? FID-dom / IS-dom of a trained image model sampled in fp32 and in
bf16 from the same seeds (paired: the same Philox noise, only the network's arithmetic differs), with images/s.

    OMP_NUM_THREADS=1 python benchmarks/sampling_dtype_quality.py CKPT [--T 50] [--n 1000] [--seeds 0,1,2]
        [--data-dir DATA] [--json FILE]

Each cell is ``fastddgan.evaluate.evaluate(CKPT, n=N, T=T, seed=s, dtype=...)``, so the metrics are the ones the
study reports. Prints one Markdown row per seed and the mean ± std of each dtype and of the paired difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from fastddgan import evaluate as E

DTYPES = ("fp32", "bf16")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--T", type=int, default=None, help="sampling steps (default: the model's T)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", help="write the records here")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    print("| seed | " + " | ".join(f"{d} FID-dom | {d} IS-dom | {d} images/s" for d in DTYPES) + " |")
    print("|---|" + "---:|" * (3 * len(DTYPES)))
    for seed in seeds:
        cells = {}
        for dtype in DTYPES:
            record = E.evaluate(args.checkpoint, metrics="fid-dom,is-dom", n=args.n, T=args.T, seed=seed,
                                data_dir=args.data_dir, device="cpu", dtype=dtype)
            cells[dtype] = {"FID-dom": record["metrics"]["FID-dom"], "IS-dom": record["metrics"]["IS-dom"],
                            "images_per_s": record["speed"]["images_per_s"], "T": record["speed"]["T"]}
        rows.append({"seed": seed, **cells})
        print(f"| {seed} | " + " | ".join(f"{cells[d]['FID-dom']:.3f} | {cells[d]['IS-dom']:.3f} | "
                                         f"{cells[d]['images_per_s']:.1f}" for d in DTYPES) + " |", flush=True)

    def mean_std(values):
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"

    for d in DTYPES:
        print(f"{d}: FID-dom {mean_std([r[d]['FID-dom'] for r in rows])}, "
              f"images/s {mean_std([r[d]['images_per_s'] for r in rows])}")
    print(f"bf16 - fp32 FID-dom (paired): {mean_std([r['bf16']['FID-dom'] - r['fp32']['FID-dom'] for r in rows])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "n": args.n, "T": rows[0]["fp32"]["T"], "rows": rows}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
