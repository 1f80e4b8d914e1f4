"""Where does a trained DDGAN's sampling chain lose quality? For k = 1 .. T, start from TRUE x_k ~ q(x_k | x0)
(x0 drawn from the data set) and run the generator's last k reverse steps (EMA weights); score the x0 it ends with
by the run's metrics (FID-dom / IS-dom for images, modes / share within 3 std for 2-D data). Row k = T is the
whole chain started from (almost) pure noise; the step where the score jumps is the step to improve.

    python -m fastddgan.experiments.chain_probe RUN/checkpoints/final.pt --n 2000 --data-dir DATA

Conventions: t = 0 .. T-1 indexes the reverse steps, the step at t maps x_{t+1} to x_t (x_0: data); q_sample(x0, t)
draws x_{t+1}.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from .. import evaluate as E
from .. import load, ops
from ..data import to_model_range
from ..sampling import ddgan_sampler, stream_seeds


def chain_from_true(model, x0: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """x0 from the generator's last k steps (``ddgan_sampler`` with ``steps=k``, EMA weights), started from true
    x_k ~ q(x_k | x0); the chain's Philox key is drawn from ``generator``."""
    n = x0.shape[0]
    x = ops.q_sample(x0, torch.full((n,), k - 1), model.schedule, generator=generator)
    seeds = stream_seeds(ops.draw_seed(x.device, generator)[:1], 1 + 2 * model.T,
                         torch.zeros(1, dtype=torch.int64, device=x.device))
    net = model.ema.module
    with torch.no_grad():
        x = ddgan_sampler(lambda x_t, t, z: net(x_t, z, t), x, model.schedule, seeds, nz=model.nz, steps=k)
    return x.clamp(-1, 1) if model.clip_x0 else x


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastddgan.experiments.chain_probe",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--n", type=int, default=2000, help="data points (and samples) per row (default: 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="default: the run's")
    p.add_argument("--out", help="JSON file for the rows")
    args = p.parse_args(argv)
    model = load(args.checkpoint, map_location="cpu")
    if not hasattr(model, "generator"):
        print(f"{p.prog}: error: checkpoint: {args.checkpoint} is a DDPM; the probe runs a DDGAN's generator steps",
              file=sys.stderr)
        return 2
    config = E.run_config(model)
    dataset, data_dir = config["dataset"], args.data_dir or config.get("data_dir", "data")
    data = E.load_data(dataset, data_dir, config.get("image_size"), config.get("channels"))
    g = torch.Generator().manual_seed(args.seed)
    real = None
    if data.kind == "toy":
        x0, chosen = data.sample(args.n, generator=g), ["toy"]
    else:
        # the start digits, and other digits for precision / recall (rows made from the start digits would
        # otherwise be compared with their own originals)
        order = torch.randperm(len(data.images), generator=g)
        n = min(args.n, len(order) // 2)
        if n < args.n:
            print(f"note: {len(order)} images: {n} start digits and {n} others for precision / recall")
        x0, real = to_model_range(data.images[order[:n]]), to_model_range(data.images[order[n:2 * n]])
        chosen = ["fid-dom", "is-dom"]
    cache = E.default_cache_dir(data_dir)
    clf = E.classifier_path(cache, dataset)

    def score(x):
        return E.scores(x, chosen, data, dataset, clf, None, cache, "cpu", args.seed, real=real)

    rows = [{"start": "true x0 (the data itself)", "metrics": score(x0)}]
    for k in range(1, model.T + 1):
        rows.append({"start": f"true x_{k}", "steps": k, "metrics": score(chain_from_true(model, x0, k, g))})
    keys = (["FID-dom", "precision-dom", "recall-dom", "IS-dom", "classes"] if data.kind != "toy"
            else ["modes_covered", "high_quality"])
    print(f"{args.checkpoint}: T = {model.T}, n = {args.n}, seed {args.seed}")
    print("| start | generator steps | " + " | ".join(keys) + " |\n|---|---|" + "---|" * len(keys))
    for row in rows:
        cells = [f"{row['metrics'][k]:.4g}" if isinstance(row["metrics"][k], float) else str(row["metrics"][k])
                 for k in keys]
        print(f"| {row['start']} | {row.get('steps', 0)} | " + " | ".join(cells) + " |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "n": args.n, "seed": args.seed,
                       "rows": [{**r, "metrics": {k: v for k, v in r["metrics"].items() if k != "classifier"}}
                                for r in rows]}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
