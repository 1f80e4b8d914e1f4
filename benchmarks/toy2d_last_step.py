"""Where a trained 2-D DDGAN's mode width comes from: its last reverse step, x_1 -> x0' = G(x_1, z, 0), against
the exact posterior q(x0 | x_1) of one Gaussian mode.

For x0 from the data (mode centre c, std sigma) and x_1 ~ q(x_1 | x0), write u = x_1 / sqrt(ab_0) - c: the data's
deviation plus noise of variance nu^2 = (1 - ab_0) / ab_0 (ab_0 = alpha_bar at t = 0). Within one mode the exact
posterior is Gaussian with mean c + beta* u, beta* = sigma^2 / (sigma^2 + nu^2), and std sigma nu / sqrt(sigma^2 +
nu^2) per coordinate; its output spread (the RMS of x0 - c over sigma) is 1. For the generator (EMA weights),
with ``--draws`` latents per x_1:
- ``slope``: the least-squares slope of G's mean output (over the z whose output lies nearest x0's own mode) on
  u: how much of x_1's noise G passes through;
and over the outputs within 3 std of x0's own centre only (as the study's spread metric):
- ``z_std``: the std over z at a fixed x_1, over sigma: how widely G spreads a mode with its latent;
- ``rms``: the outputs' RMS distance from the centre over sigma (about sqrt((slope u)^2 + z_std^2));
- ``inside``: the share of outputs within 3 std of x0's centre (the rest are left out of z_std and rms);
``slope_exact`` and ``z_std_exact`` are the exact posterior's.

    python benchmarks/toy2d_last_step.py RUN/checkpoints/final.pt [...] [--data ring8] [--n 4000] [--draws 16]
"""

from __future__ import annotations

import argparse
import json
import math

import torch

import fastddgan
from fastddgan import ops
from fastddgan.data import TOY2D, toy2d


def last_step_width(model, data: str, n: int = 4000, draws: int = 16, seed: int = 0) -> dict:
    mixture, sigma = TOY2D[data], TOY2D[data].std
    g = torch.Generator().manual_seed(seed)
    x0 = toy2d(data, n, generator=g)
    t = torch.zeros(n, dtype=torch.long)
    x1 = ops.q_sample(x0, t, model.schedule, generator=g)
    with torch.no_grad():
        out = torch.stack([model.ema(x1, torch.randn(n, model.nz, generator=g), t).double()
                           for _ in range(draws)])  # (draws, n, 2)
    ab = model.schedule.alphas_cumprod[0].double()
    mode = mixture.nearest_mode(x0)[0]
    centre = mixture.centers.double()[mode]
    u, d = x1.double() / ab.sqrt() - centre, out - centre
    own = mixture.nearest_mode(out.reshape(-1, 2).float())[0].view(draws, n) == mode
    own_mean = (d * own.unsqueeze(2)).sum(0) / own.sum(0).clamp(min=1).unsqueeze(1)  # G's mean over z, own mode
    slope = float((u * own_mean).sum() / u.pow(2).sum())
    inside = d.norm(dim=2) <= 3 * sigma  # (draws, n)
    count = inside.sum(0)
    keep = count >= 2
    inside_mean = (d * inside.unsqueeze(2)).sum(0) / count.clamp(min=1).unsqueeze(1)
    within = ((d - inside_mean).pow(2).sum(2) * inside)[:, keep].sum() / (count[keep] - 1).sum()  # unbiased, 2 coords
    nu2 = float((1 - ab) / ab)
    return {"T": model.T, "nu/sigma": round(math.sqrt(nu2) / sigma, 2),
            "slope": round(slope, 4), "slope_exact": round(sigma**2 / (sigma**2 + nu2), 4),
            "z_std": round(math.sqrt(float(within) / 2) / sigma, 3),
            "z_std_exact": round(math.sqrt(nu2 / (sigma**2 + nu2)), 3),
            "rms": round(math.sqrt(float(d.pow(2).sum(2)[inside].mean()) / 2) / sigma, 3),
            "inside": round(float(inside.double().mean()), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--data", default="ring8", choices=sorted(TOY2D))
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--draws", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    for path in args.checkpoints:
        model = fastddgan.load(path)
        print(json.dumps({"checkpoint": path, **last_step_width(model, args.data, args.n, args.draws, args.seed)}))


if __name__ == "__main__":
    main()
