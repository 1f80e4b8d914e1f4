#!/usr/bin/env python
"""Training time outside the networks (issue 15: <= 10% for image presets): a profile of a few ``model.train_step``.

    OMP_NUM_THREADS=1 python benchmarks/train_overhead.py [--preset mnist5k] [--batch 64] [--steps 3] [--json FILE]

The model is the one ``python -m fastddgan.train --dataset mnist5k`` builds (the training config's defaults: DDGAN,
T = 4, JS loss with R1 every step, EMA), fed random images of the data set's shape (the data's values do not change
the time). After ``--warmup`` untimed steps, ``--steps`` steps run under ``torch.profiler`` and each profiled step's
time is split into

* networks: G's and D's forward calls (a ``record_function`` range opened by forward hooks), the backward nodes of
  the ops run inside them (matched by autograd sequence number; the nodes that a backward of those nodes creates,
  R1's double backward, count too), the accumulation of the weights' gradients, and the optimisers' ``step`` /
  ``zero_grad``;
* outside: everything else (the pair draw, the posterior draw, the losses, R1's non-network part, the EMA update,
  Python), with its largest ops by self time.

The same steps are also timed without the profiler (its per-op cost inflates the small ops; the split is of the
profiled time). CPU only; the thread count is torch's (report it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from typing import Dict, List, Tuple

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from fastddgan.models.presets import PRESETS
from fastddgan.train import build, config

NET_RANGE = "fastddgan.network_forward"
STEP_RANGE = "fastddgan.train_step"
BACKWARD = "autograd::engine::evaluate_function: "
OPTIMIZER = ("Optimizer.step#", "Optimizer.zero_grad#")
ACCUMULATE = "AccumulateGrad"  # a parameter's gradient accumulation (the networks' weights: R1 uses autograd.grad)


def build_model(preset: str, batch: int, model: str = "ddgan", extra=()):
    """The model and one batch, as ``python -m fastddgan.train --dataset PRESET --batch-size BATCH --model MODEL``
    builds them."""
    net = PRESETS[preset]
    info = {"kind": "image", "channels": net["channels"], "image_size": net["image_size"], "num_classes": 10,
            "size": 5000}
    with tempfile.TemporaryDirectory() as out:
        c = config.resolve(config.parse(["--dataset", preset, "--preset", preset, "--out", out,
                                         "--batch-size", str(batch), "--model", model, *extra]), info)
    model = build.build_model(c, info)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand((batch, info["channels"], info["image_size"], info["image_size"]), generator=gen) * 2 - 1
    y = torch.randint(0, info["num_classes"], (batch,), generator=gen) if c["cond"] else None
    return model, x0, y, c


def mark_network_calls(model) -> List:
    """Forward hooks that wrap every G and D call in a ``record_function(NET_RANGE)`` range."""
    handles, ranges = [], []

    def pre(module, args):
        ranges.append(record_function(NET_RANGE))
        ranges[-1].__enter__()

    def post(module, args, output):
        ranges.pop().__exit__(None, None, None)

    for net in (model.generator, model.discriminator):
        handles += [net.register_forward_pre_hook(pre), net.register_forward_hook(post)]
    return handles


def _descendants(event):
    stack = list(event.cpu_children)
    while stack:
        child = stack.pop()
        yield child
        stack.extend(child.cpu_children)


def _union(intervals: List[Tuple[float, float]]) -> List[Tuple[float, float]]:
    merged: List[Tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _inside(intervals: List[Tuple[float, float]], start: float) -> bool:
    return any(a <= start < b for a, b in intervals)


def split(events) -> Dict[str, object]:
    """Network and outside time (µs) of the profiled steps, and the largest ops outside by self time."""
    events = sorted((e for e in events if e.device_type.name == "CPU"), key=lambda e: e.time_range.start)
    steps = [e for e in events if e.name == STEP_RANGE]
    network_seq = set()
    spans: List[Tuple[float, float]] = []
    for event in events:  # in start order: a backward node's forward op (or the node that created it) came first
        name = event.name
        in_net = name == NET_RANGE
        if name.startswith(BACKWARD) and (event.sequence_nr in network_seq or name.endswith(ACCUMULATE)):
            in_net = True
        if in_net:
            spans.append((event.time_range.start, event.time_range.end))
            network_seq.update(c.sequence_nr for c in _descendants(event) if c.sequence_nr >= 0)
        elif name.startswith(OPTIMIZER):
            spans.append((event.time_range.start, event.time_range.end))
    spans = _union(spans)
    total = sum(e.time_range.end - e.time_range.start for e in steps)
    network = sum(b - a for a, b in spans)
    outside: Dict[str, float] = defaultdict(float)
    for event in events:
        if event.name in (STEP_RANGE, NET_RANGE) or not steps or _inside(spans, event.time_range.start):
            continue
        if any(s.time_range.start <= event.time_range.start < s.time_range.end for s in steps):
            outside[event.name] += event.self_cpu_time_total
    top = sorted(outside.items(), key=lambda kv: -kv[1])[:15]
    return {"steps": len(steps), "total_us": total, "network_us": network, "outside_us": total - network,
            "outside_fraction": (total - network) / total if total else float("nan"), "top_outside_self_us": top}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mnist5k", help="an image preset (default: mnist5k)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", metavar="FILE", help="write the numbers here too")
    args = parser.parse_args(argv)

    model, x0, y, c = build_model(args.preset, args.batch)
    gen = torch.Generator().manual_seed(1)
    for _ in range(args.warmup):
        model.train_step(x0, y, generator=gen)
    plain = []
    for _ in range(args.steps):
        start = time.perf_counter()
        model.train_step(x0, y, generator=gen)
        plain.append(time.perf_counter() - start)
    handles = mark_network_calls(model)
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                with record_function(STEP_RANGE):
                    model.train_step(x0, y, generator=gen)
    finally:
        for handle in handles:
            handle.remove()
    result = split(prof.events())
    result.update({"preset": args.preset, "batch": args.batch, "loss": c["loss"], "T": c["T"],
                   "r1_gamma": c["r1_gamma"], "lazy_reg": c["lazy_reg"], "threads": torch.get_num_threads(),
                   "plain_step_s": sorted(plain), "load_average": os.getloadavg()})
    steps = max(result["steps"], 1)
    print(f"{args.preset}, batch {args.batch}, {torch.get_num_threads()} thread(s), load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"train_step without the profiler: median {sorted(plain)[len(plain) // 2]:.3f} s over {len(plain)} steps")
    print(f"profiled: {result['total_us'] / steps / 1e6:.3f} s per step; networks (forward, backward, optimisers) "
          f"{result['network_us'] / steps / 1e6:.3f} s, outside {result['outside_us'] / steps / 1e3:.1f} ms "
          f"= {100 * result['outside_fraction']:.2f}%")
    print("largest ops outside the networks (self time per step):")
    for name, us in result["top_outside_self_us"]:
        print(f"  {us / steps / 1e3:9.2f} ms  {name}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
