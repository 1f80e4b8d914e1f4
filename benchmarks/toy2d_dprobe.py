"""Can a discriminator see a trained 2-D DDGAN's final-step error? Trains a fresh D (each spec: ToyDiscriminator
arguments as JSON, optional "lr") for 3,000 steps on the final reverse step only — true pairs (x0, x_1) against
(G(x_1, z, 0), x_1) with the trained generator (EMA weights) frozen — and prints its accuracy over the last 500
steps. 50% means the error is invisible to that D.

    python benchmarks/toy2d_dprobe.py RUN/checkpoints/final.pt '{}' '{"fourier": 64, "fourier_scale": 1.0}'

``--shrink F`` replaces the generator by a known error: the fake x0 is the true one pulled to its mode's centre,
c + F (x0 - c) (modes F times as wide as the data's; for F = 0.5 the best possible accuracy is 0.737), so the
probe asks whether a D can see a mode's width at all. ``--r1 G`` adds the R1 penalty G / 2 E|grad V(true)|^2.
"""

from __future__ import annotations

import argparse
import json
from typing import Optional

import torch
import torch.nn.functional as F

import fastddgan
from fastddgan import losses, ops
from fastddgan.data import TOY2D, toy2d
from fastddgan.models.toy import ToyDiscriminator


def shrunk(x0: torch.Tensor, data: str, factor: float) -> torch.Tensor:
    """x0 pulled towards its nearest mode's centre: c + factor (x0 - c)."""
    mixture = TOY2D[data]
    centre = mixture.centers[mixture.nearest_mode(x0)[0]].to(x0.dtype)
    return centre + factor * (x0 - centre)


def probe(model, data: str, spec: dict, steps: int = 3000, batch: int = 256, seed: int = 0,
          shrink: Optional[float] = None, r1: float = 0.0) -> float:
    spec = dict(spec)
    lr = spec.pop("lr", 1e-3)
    torch.manual_seed(seed)
    D = ToyDiscriminator(**spec)
    opt = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.99))
    g, accuracies = torch.Generator().manual_seed(seed), []
    t = torch.zeros(batch, dtype=torch.long)
    for step in range(steps):
        x_prev, x_t = ops.q_sample_pairs(toy2d(data, batch, generator=g), t, model.schedule, generator=g)
        with torch.no_grad():
            fake = model.ema(x_t, torch.randn(batch, model.nz, generator=g), t) if shrink is None else \
                shrunk(x_prev, data, shrink)
        x_prev.requires_grad_(r1 > 0)
        real_v, fake_v = D(x_prev, x_t, t), D(fake, x_t, t)
        loss = F.softplus(-real_v).mean() + F.softplus(fake_v).mean()
        if r1 > 0:
            loss = loss + 0.5 * r1 * losses.r1_penalty(real_v, x_prev)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= steps - 500:
            accuracies.append(((real_v > 0).float().mean() + (fake_v < 0).float().mean()).item() / 2)
    return sum(accuracies) / len(accuracies)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("specs", nargs="+", help="ToyDiscriminator arguments as JSON, e.g. '{\"fourier\": 64}'")
    p.add_argument("--data", default="ring8")
    p.add_argument("--shrink", type=float, default=None, help="fake x0 = c + SHRINK (x0 - c) instead of G's")
    p.add_argument("--r1", type=float, default=0.0, help="R1 weight gamma (default 0)")
    p.add_argument("--steps", type=int, default=3000)
    args = p.parse_args()
    torch.set_num_threads(1)
    model = fastddgan.load(args.checkpoint)
    for spec in args.specs:
        accuracy = probe(model, args.data, json.loads(spec), args.steps, shrink=args.shrink, r1=args.r1)
        print(f"{spec}: accuracy (last 500 steps) {accuracy:.3f}", flush=True)


if __name__ == "__main__":
    main()
