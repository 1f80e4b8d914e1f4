#!/usr/bin/env python
"""Continue a finished DDGAN run for a few steps with one thing changed, as a paired test of a remedy.

    OMP_NUM_THREADS=1 python benchmarks/ddgan_finetune_probe.py RUN/checkpoints/final.pt OUT.pt --steps 1000 \
        --data-dir DATA [--lr-g 1e-4 --lr-d 8e-5] [--diversity W --diversity-steps 1,2] [--seed 0]

The run's networks, EMA and Adam states are restored from its checkpoint (built from its own training config);
the learning rates are set to ``--lr-g`` / ``--lr-d`` and held constant (the run's cosine schedule has decayed to
its floor by its end); ``--diversity`` / ``--diversity-steps`` set the mode-seeking term (``DDGAN(diversity=...,
diversity_steps=...)``). Batches of ``--batch-size`` images are drawn at random from the run's data set. The
result is written as a checkpoint with the run's config (``python -m fastddgan.evaluate OUT.pt`` scores it).
Run it twice from the same checkpoint and seed, with and without the change, and compare the two: the control
says what continuing alone does. ``--steps 0 --raw-generator`` writes the run's trained generator in place of its
EMA (which is what samples), to score what the EMA does.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from fastddgan import checkpoint
from fastddgan import evaluate as E
from fastddgan.data.convert import to_model_range
from fastddgan.train.build import build_model, dataset_info
from fastddgan.train.config import ConfigError, parse_diversity_steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ddgan_finetune_probe.py", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("out")
    p.add_argument("--steps", type=int, required=True, help="0: only the write (with --raw-generator)")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--lr-g", type=float, default=1e-4)
    p.add_argument("--lr-d", type=float, default=8e-5)
    p.add_argument("--diversity", type=float, default=0.0)
    p.add_argument("--diversity-steps", default="0", help="as the trainer's: comma-separated reverse steps or 'all'")
    p.add_argument("--batch-size", type=int, default=None, help="default: the run's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--raw-generator", action="store_true",
                   help="write the trained generator in the EMA's place (it is what samples): the EMA's effect")
    args = p.parse_args(argv)
    if args.steps < 0:
        p.error(f"--steps: expected an integer >= 0, got {args.steps}")
    state = checkpoint.read(args.checkpoint)
    c = {"diversity_steps": [0], **state["extra"]["train_config"]}  # configs saved before the option
    if c.get("model") != "ddgan":
        p.error(f"checkpoint: {args.checkpoint} is not a DDGAN run")
    try:
        diversity_steps = parse_diversity_steps(args.diversity_steps, c["T"])
    except ConfigError as err:
        p.error(str(err))
    data = E.load_data(c["dataset"], args.data_dir, c.get("image_size"), c.get("channels"))
    model = build_model(c, dataset_info(data))
    checkpoint.restore(model, {**state, "path": args.checkpoint})
    model.train_state.schedulers = []  # constant learning rates from here
    for name, lr in (("g", args.lr_g), ("d", args.lr_d)):
        for group in model.train_state.optimizers[name].param_groups:
            group["lr"] = lr
    model.objective.diversity = args.diversity
    model.objective.diversity_steps = tuple(diversity_steps)
    images = to_model_range(data.images)
    batch = args.batch_size or c["batch_size"]
    g = torch.Generator().manual_seed(args.seed)
    start, log = time.time(), []
    for step in range(1, args.steps + 1):
        x0 = images[torch.randint(0, images.shape[0], (batch,), generator=g)]
        metrics = model.train_step(x0, generator=g)
        if step % args.log_every == 0 or step == args.steps:
            row = {"step": step, "seconds": round(time.time() - start, 1),
                   **{k: round(float(v), 5) for k, v in metrics.items()}}
            log.append(row)
            print(json.dumps(row), flush=True)
    if args.raw_generator:
        model.ema.module.load_state_dict(model.generator.state_dict())
    extra = dict(state["extra"])
    extra["finetune"] = {"from": args.checkpoint, "from_step": int(state.get("step", 0)), "steps": args.steps,
                         "lr_g": args.lr_g, "lr_d": args.lr_d, "diversity": args.diversity,
                         "diversity_steps": list(model.objective.diversity_steps), "seed": args.seed,
                         "raw_generator": args.raw_generator,
                         "threads": torch.get_num_threads(), "log": log}
    checkpoint.save(model, args.out, extra=extra)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
