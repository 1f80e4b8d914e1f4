"""The critic's signal at each reverse step of a trained 2-D DDGAN: E_data[V] - E_model[V] on batches of true and
generated pairs (x_{t-1}, x_t) at one t, its batch-to-batch spread, and their ratio (signal / noise).

    python benchmarks/toy2d_critic_snr.py RUN/checkpoints/final.pt [--batch 256] [--rounds 200]

For a Wasserstein critic the mean is its estimate of W1 between q(x_{t-1} | x_t) and the model's step; for the
f-GAN objectives it is the raw logit gap. Used in ``benchmarks/results/sweep-2d/README.md`` (session 6).
"""

from __future__ import annotations

import argparse

import torch

import fastddgan
from fastddgan import ops
from fastddgan.data import toy2d


def step_signal(model, data: str, t0: int, batch: int, rounds: int, generator: torch.Generator) -> torch.Tensor:
    """E_data[V] - E_model[V] over ``rounds`` batches of ``batch`` pairs, all at step ``t0``."""
    gaps = []
    t = torch.full((batch,), t0, dtype=torch.long)
    for _ in range(rounds):
        x0 = toy2d(data, batch, generator=generator)
        with torch.no_grad():
            x_prev, x_t = ops.q_sample_pairs(x0, t, model.schedule, generator=generator)
            fake_prev = model._fake_prev(x_t, t, None, generator)
            gap = model._d(x_prev, x_t, t, None).mean() - model._d(fake_prev, x_t, t, None).mean()
        gaps.append(gap.item())
    return torch.tensor(gaps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", default="ring8")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    model = fastddgan.load(args.checkpoint)
    model.eval()
    g = torch.Generator().manual_seed(args.seed)
    for t0 in range(model.T):
        gaps = step_signal(model, args.data, t0, args.batch, args.rounds, g)
        print(f"t = {t0}: E_data[V] - E_model[V] = {gaps.mean():.4f} +- {gaps.std():.4f} per batch of {args.batch} "
              f"(signal / noise {gaps.mean() / gaps.std():.2f})")


if __name__ == "__main__":
    main()
