#!/usr/bin/env python
"""Seconds per training step of candidate 28x28 networks on the CPU (issue 12: a preset that trains digits on
2 cores): DDGAN (T = 4, JS, R1 every step, EMA) and DDPM steps of each candidate, built as
``python -m fastddgan.train --dataset mnist5k`` builds them, on random images of the data set's shape.

    OMP_NUM_THREADS=1 python benchmarks/image_cpu_sizes.py [--batch 64] [--steps 3] [--names a,b] [--json FILE]

Prints one line per (candidate, model): parameters of each network, seconds per step (median of ``--steps`` after
one warm-up step), images per second, and the steps that fit in 30 minutes (DDGAN) / 60 minutes (DDPM).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fastddgan.models.presets import PRESETS, _image  # noqa: E402
from train_overhead import build_model  # noqa: E402

def unet(ch, mult, blocks, attn=()):
    return dict(ch=ch, ch_mult=mult, num_res_blocks=blocks, attn_resolutions=attn)


def generator(ch, mult, blocks, attn=(), nz=50, zdim=128, mapping=2):
    return dict(unet(ch, mult, blocks, attn), nz=nz, z_emb_dim=zdim, n_mapping_layers=mapping, dropout=0.0)


CANDIDATES = {
    "c16": PRESETS["mnist-cpu"],  # the preset chosen with this script (its DDPM U-Net with dropout 0.1)
    "c24": _image(28, 1, g=generator(24, (1, 2, 2), 1), d=unet(24, (1, 2, 4), 1), eps=unet(24, (1, 2, 2), 1)),
    "c32": _image(28, 1, g=generator(32, (1, 2, 2), 1), d=unet(32, (1, 2, 4), 1), eps=unet(32, (1, 2, 2), 1)),
    "c32-attn": _image(28, 1, g=generator(32, (1, 2, 2), 1, (7,)), d=unet(32, (1, 2, 4), 1),
                       eps=unet(32, (1, 2, 2), 1, (7,))),
    "c32x2": _image(28, 1, g=generator(32, (1, 2, 2), 2, (7,)), d=unet(32, (1, 2, 4), 1),
                    eps=unet(32, (1, 2, 2), 2, (7,))),
    "c48": _image(28, 1, g=generator(48, (1, 2, 2), 1, (7,)), d=unet(32, (1, 2, 4), 1),
                  eps=unet(48, (1, 2, 2), 1, (7,))),
    "c64": _image(28, 1, g=generator(64, (1, 2, 2), 1, (7,)), d=unet(48, (1, 2, 4), 1),
                  eps=unet(64, (1, 2, 2), 1, (7,))),
}
DDGAN_MINUTES, DDPM_MINUTES = 30, 60


def time_steps(model, x0, y, steps: int):
    model.train_step(x0, y) if y is not None else model.train_step(x0)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_step(x0, y) if y is not None else model.train_step(x0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--names", default=",".join(CANDIDATES))
    parser.add_argument("--json")
    parser.add_argument("--train-args", default="", help="extra training flags, e.g. '--lazy-reg 4'")
    args = parser.parse_args(argv)
    rows, saved = [], PRESETS["mnist5k"]
    try:
        for name in args.names.split(","):
            PRESETS["mnist5k"] = CANDIDATES[name]  # the data set's preset (the CLI's --preset choices are fixed)
            rows += time_candidate(name, args)
    finally:
        PRESETS["mnist5k"] = saved
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


def time_candidate(name: str, args) -> list:
    rows = []
    for kind in ("ddgan", "ddpm"):
        model, x0, y, _ = build_model("mnist5k", args.batch, model=kind,
                                      extra=args.train_args.split() if kind == "ddgan" else ())
        nets = {role: sum(p.numel() for p in getattr(model, attr).parameters()) for role, attr in
                (("generator", "generator"), ("discriminator", "discriminator"), ("denoiser", "model"))
                if role in type(model).roles}
        sec = time_steps(model, x0, y, args.steps)
        minutes = DDGAN_MINUTES if kind == "ddgan" else DDPM_MINUTES
        row = {"name": name, "model": kind, "params": nets, "batch": args.batch, "s_per_step": sec,
               "images_per_s": args.batch / sec, "steps_in_budget": int(minutes * 60 / sec),
               "threads": torch.get_num_threads()}
        rows.append(row)
        print(f"{name:10s} {kind:6s} params {nets} {sec:.3f} s/step, {args.batch / sec:.0f} img/s, "
              f"{row['steps_in_budget']} steps in {minutes} min ({torch.get_num_threads()} threads)", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
