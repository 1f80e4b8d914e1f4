"""A quick probe of the objectives on a two-mode 1-D target: which objective / generator form covers both modes?

    python -m fastddgan.losses.probe                      # every objective and form, 3 seeds (about 10 min, CPU)
    python -m fastddgan.losses.probe --losses js hellinger rkl tv --seeds 5 --r1-gamma 0.02
    python -m fastddgan.losses.probe --losses wasserstein --gp-lambda 0.1 1 10 --n-critic 1 5

Target: an equal mixture of N(-2, 0.2^2) and N(2, 0.2^2). Generator: MLP z (4-d Gaussian) -> x; discriminator:
MLP x -> V; Adam (lr 1e-3, betas (0.5, 0.9)), batch 256. A mode counts as covered when at least 20% of 4096
generated samples lie within 3 std of its centre (the target puts 50% there); ``quality`` is the share of samples
within 3 std of either centre. R1 (``--r1-gamma``) applies to the f-GANs, the gradient penalty to Wasserstein.
The defaults of :mod:`fastddgan.losses.objectives` were chosen from these runs (results in its docstring).
"""

from __future__ import annotations

import argparse
import time
from typing import Dict, List, Optional

import torch
from torch import nn

from .objectives import GENERATOR_FORMS, LOSSES, GANLoss, get_loss
from .penalties import gradient_penalty, r1_penalty

MODES = (-2.0, 2.0)
MODE_STD = 0.2


def _mlp(n_in: int, n_out: int, width: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2),
                         nn.Linear(width, n_out))


def _target(n: int, gen: torch.Generator) -> torch.Tensor:
    centres = torch.tensor(MODES)[torch.randint(0, len(MODES), (n,), generator=gen)]
    return (centres + MODE_STD * torch.randn(n, generator=gen)).unsqueeze(1)


def coverage(x: torch.Tensor) -> Dict[str, object]:
    """Share of samples near each mode, modes covered (share >= 0.2) and quality (share near any mode)."""
    x = x.reshape(-1)
    shares = [float(((x - m).abs() < 3 * MODE_STD).float().mean()) for m in MODES]
    return {"shares": shares, "modes": sum(s >= 0.2 for s in shares), "quality": sum(shares)}


def run(loss: GANLoss, steps: int = 2000, seed: int = 0, batch: int = 256, lr: float = 1e-3,
        r1_gamma: float = 0.0) -> Dict[str, object]:
    """Train a small 1-D GAN with ``loss`` (plus R1 gamma/2 E||grad V||^2 on real data when ``r1_gamma > 0``);
    the coverage of its final samples (see :func:`coverage`)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1000)
    g_net, d_net = _mlp(4, 1), _mlp(1, 1)
    opt_g = torch.optim.Adam(g_net.parameters(), lr=lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(d_net.parameters(), lr=lr, betas=(0.5, 0.9))

    def d_fn(x_prev, x_t=None, t=None, y=None):
        return d_net(x_prev).squeeze(1)

    for _ in range(steps):
        for _ in range(loss.n_critic):
            real = _target(batch, gen).requires_grad_(r1_gamma > 0)
            with torch.no_grad():
                fake = g_net(torch.randn(batch, 4, generator=gen))
            v_real = d_fn(real)
            loss_d = loss.discriminator(v_real, d_fn(fake))
            if r1_gamma > 0:
                loss_d = loss_d + 0.5 * r1_gamma * r1_penalty(v_real, real)
            if loss.needs_gradient_penalty:
                loss_d = loss_d + loss.gp_lambda * gradient_penalty(d_fn, real.detach(), fake, None, None,
                                                                    generator=gen)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        d_net.requires_grad_(False)
        loss_g = loss.generator(d_fn(g_net(torch.randn(batch, 4, generator=gen))))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        d_net.requires_grad_(True)
    with torch.no_grad():
        samples = g_net(torch.randn(4096, 4, generator=gen))
    result = coverage(samples)
    result["finite"] = bool(torch.isfinite(samples).all())
    return result


def sweep(names: List[str], seeds: int = 3, steps: int = 2000, gp_lambdas=(0.1, 1.0, 10.0),
          n_critics=(1, 5), forms: Optional[List[str]] = None, r1_gamma: float = 0.0,
          verbose: bool = True) -> List[Dict[str, object]]:
    """Every (objective, generator form) of ``names`` (Wasserstein: every gp_lambda x n_critic) over ``seeds``;
    ``r1_gamma`` applies to the f-GANs only."""
    configs = []
    for name in names:
        if name == "wasserstein":
            configs += [dict(name=name, gp_lambda=lam, n_critic=k) for lam in gp_lambdas for k in n_critics]
        else:
            configs += [dict(name=name, generator_form=form) for form in (forms or GENERATOR_FORMS)]
    rows = []
    for config in configs:
        options = dict(config)
        loss = get_loss(options.pop("name"), **options)
        start = time.perf_counter()
        r1 = 0.0 if loss.needs_gradient_penalty else r1_gamma
        results = [run(loss, steps=steps, seed=seed, r1_gamma=r1) for seed in range(seeds)]
        row = dict(config, both_modes=sum(r["modes"] == 2 for r in results), seeds=seeds,
                   quality=sum(r["quality"] for r in results) / seeds,
                   shares=[[round(s, 2) for s in r["shares"]] for r in results],
                   seconds=time.perf_counter() - start)
        rows.append(row)
        if verbose:
            label = ", ".join(f"{k}={v}" for k, v in config.items() if k != "name")
            print(f"{config['name']:12s} {label:38s} both modes {row['both_modes']}/{seeds}  "
                  f"quality {row['quality']:.2f}  shares {row['shares']}  ({row['seconds']:.0f} s)", flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--forms", nargs="+", default=list(GENERATOR_FORMS), choices=list(GENERATOR_FORMS))
    parser.add_argument("--gp-lambda", nargs="+", type=float, default=[0.1, 1.0, 10.0])
    parser.add_argument("--n-critic", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--r1-gamma", type=float, default=0.0, help="R1 weight for the f-GANs (DDGAN uses 0.02)")
    args = parser.parse_args(argv)
    sweep(args.losses, seeds=args.seeds, steps=args.steps, gp_lambdas=args.gp_lambda, n_critics=args.n_critic,
          forms=args.forms, r1_gamma=args.r1_gamma)


if __name__ == "__main__":
    main()
