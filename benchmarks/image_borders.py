"""How often does a trained image model draw a grey background? For each export (or checkpoint): the share of n
samples whose border (the outer ``--ring`` pixels, where a centred digit has none) is not black, its mean above
``-0.95`` and above ``-0.9`` in the model range [-1, 1], beside the same shares for the data set's real images.
A digit with a grey square behind it is a failure FID-dom sees but a class count does not.

    python benchmarks/image_borders.py RUN/export [MORE ...] --data-dir DATA [--T 50] [--n 1000] [--seed 0]

``--T`` is the number of DDPM sampling steps (respaced); a DDGAN samples with its own T whatever ``--T`` says.
"""

from __future__ import annotations

import argparse
import time

import torch

import fastddgan
from fastddgan.data import load_dataset, to_model_range

THRESHOLDS = (-0.95, -0.9)


def border_means(x: torch.Tensor, ring: int) -> torch.Tensor:
    """(N,) mean of each image's outer ``ring`` pixels over channels, in the model range."""
    inside = torch.zeros(x.shape[-2:], dtype=torch.bool)
    inside[ring:-ring, ring:-ring] = True
    return x.float().mean(dim=1)[:, ~inside].mean(dim=1)


def describe(means: torch.Tensor) -> str:
    shares = ", ".join(f"> {v:g}: {(means > v).float().mean().item():.3f}" for v in THRESHOLDS)
    return f"border mean {means.mean().item():.4f}; share with border mean {shares}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="exports or checkpoints")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--T", type=int, default=None, help="DDPM sampling steps (default: its training T)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ring", type=int, default=3, help="border width in pixels")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small networks: one thread is fastest, and a busy machine does not collapse it
    real = to_model_range(load_dataset(args.dataset, args.data_dir).images)
    if not 1 <= args.ring < min(real.shape[-2:]) / 2:  # 0 or half the side would leave no inside: the whole image
        parser.error(f"--ring: expected a border width of 1 to {(min(real.shape[-2:]) - 1) // 2} pixels for "
                     f"{args.dataset}'s {tuple(real.shape[-2:])} images, got {args.ring}")
    print(f"real images ({len(real)}): {describe(border_means(real, args.ring))}", flush=True)
    for path in args.models:
        start = time.perf_counter()
        model = fastddgan.load(path)
        T = args.T if isinstance(model, fastddgan.DDPM) else None  # a DDGAN samples with its training T
        samples = fastddgan.sample(model, T=T, n=args.n, seed=args.seed, batch_size=250)
        print(f"{path} (n={args.n}, seed {args.seed}, {time.perf_counter() - start:.0f} s): "
              f"{describe(border_means(samples, args.ring))}", flush=True)


if __name__ == "__main__":
    main()
