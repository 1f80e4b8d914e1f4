"""Truncation and temperature of a trained image DDGAN's chain, measured: the generator's latent z scaled by psi_z
(BigGAN's truncation, here 0 = G ignores its latent), the posterior noise by psi_n and the starting x_T by psi_T,
each with FID-dom and improved precision / recall (k = 3) in the domain classifier's features against 1,000 real
digits, n = 1,000 samples per setting, two sampling seeds.

    python benchmarks/ddgan_temperature_probe.py RUN/checkpoints/final.pt --data-dir DATA
"""

from __future__ import annotations

import argparse
import json

import torch

import fastddgan
from fastddgan import ops
from fastddgan.evaluate import load_data, real_images, run_config
from fastddgan.metrics import DomainClassifier, classifier_path, default_cache_dir, precision_recall, real_stats
from fastddgan.metrics.cache import file_tag
from fastddgan.metrics.fid import feature_stats, frechet_distance

SETTINGS = [(1, 1, 1), (0.7, 1, 1), (0.5, 1, 1), (0.0, 1, 1), (1, 0.9, 1), (1, 0.8, 1), (1, 1, 0.8), (0.5, 0.9, 1)]


def chain(model, n: int, psi_z: float, psi_n: float, psi_T: float, g: torch.Generator) -> torch.Tensor:
    """The T-step DDGAN chain with the EMA generator, z ~ N(0, psi_z^2 I), posterior noise scaled by psi_n."""
    x = torch.randn((n,) + tuple(model.sample_shape), generator=g) * psi_T
    with torch.no_grad():
        for i in reversed(range(model.T)):
            t = torch.full((n,), i, dtype=torch.long)
            x0 = model.ema.module(x, torch.randn(n, model.nz, generator=g) * psi_z, t)
            x = ops.posterior_sample(x0, x, t, model.schedule, noise=torch.randn(x.shape, generator=g) * psi_n)
    return x


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seeds", default="1,2")
    args = p.parse_args(argv)
    model = fastddgan.load(args.checkpoint)
    config = run_config(model)
    data = load_data(config["dataset"], args.data_dir, config.get("image_size"), config.get("channels"))
    cache = default_cache_dir(args.data_dir)
    clf_path = classifier_path(cache, config["dataset"])
    clf = DomainClassifier.load(clf_path)
    mu_r, sigma_r = real_stats(data, f"dom-{file_tag(clf_path)}", clf.features, cache)
    real = clf.features(real_images(data, args.n, 0))
    other = clf.features(real_images(data, 2 * args.n, 0)[args.n:])  # the floor: other real digits
    mu, sigma = feature_stats(other)
    print(json.dumps({"real digits": len(other), "FID-dom": round(frechet_distance(mu, sigma, mu_r, sigma_r), 3),
                      **{k: round(v, 3) for k, v in precision_recall(real, other).items()}}), flush=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        for psi_z, psi_n, psi_T in SETTINGS:
            g = torch.Generator().manual_seed(seed)
            x = torch.cat([chain(model, min(250, args.n - i), psi_z, psi_n, psi_T, g) for i in range(0, args.n, 250)])
            f = clf.features(x)
            mu, sigma = feature_stats(f)
            print(json.dumps({"seed": seed, "psi_z": psi_z, "psi_n": psi_n, "psi_T": psi_T,
                              "FID-dom": round(frechet_distance(mu, sigma, mu_r, sigma_r), 3),
                              **{k: round(v, 3) for k, v in precision_recall(real, f).items()}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
