#!/usr/bin/env python
"""Does a trained DDGAN generator use its latent z? Per reverse step, against the exact posterior of the data.

    OMP_NUM_THREADS=1 python benchmarks/latent_use_probe.py RUN/checkpoints/final.pt... --data-dir DATA \
        --classifier benchmarks/results/study-mnist5k/classifier-mnist5k.pt [--n 100] [--k-draws 10] \
        [--starts 3,2] [--json F] [--md F]

Conventions as ``fastddgan.experiments.chain_probe``: x_k ~ q(x_k | x0) is the chain's state before step t = k - 1
(x_0: data). For ``n`` real images x0 and one true x_k each:

- **Spread of G's x0 prediction at step k - 1 over z** (every start k = 1..T): mean |G(x_k, z_1) - G(x_k, z_2)|
  (per pixel, two fresh latents, EMA weights), against the same spread of the exact posterior's x0,
  mean |x0_a - x0_b| with x0_a, x0_b ~ q(x0 | x_k) drawn independently. The exact posterior is that of the
  EMPIRICAL data distribution (the training images, which the generator was trained on) less the start image:
  q(x0 = x_i | x_k) proportional to exp(-|x_k - sqrt(abar_k) x_i|^2 / (2 (1 - abar_k))), i not the start. (With
  the start image in it, the posterior at low noise is that one image, a memorising target; left out, it is the
  posterior of a digit the set does not hold, the generator's task on new data.)
- **Class diversity of the chain from x_k** (each start in ``--starts``): the generator's last k steps run
  ``--k-draws`` times from the same x_k, with (all) fresh latents and posterior noise at every step, (z) only the
  first step's latent varied and every other draw shared by the copies, (noise) only the first step's posterior
  noise varied; the x0 they end with is labelled by the domain classifier. Per start: the entropy (nats) of the
  K labels and the number of distinct classes, averaged over starts; the share of labels equal to the start
  image's own; the labels' overall mix. Reference rows: the exact class posterior q(class | x_k) (classes are the
  classifier's labels of the training images), its entropy and K draws from it (same finite-K bias as the rows).

A generator that ignores z makes its step a deterministic map of x_k plus the Gaussian posterior noise: the
"z" row collapses to about one class per start while the "noise" row carries the diversity. CPU, one thread:
about a minute per start and run at n = 100, K = 10 (the 28x28 mnist-cpu networks).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import torch

from fastddgan import evaluate as E
from fastddgan import load, ops
from fastddgan._io import atomic_write, atomic_write_json
from fastddgan.data.convert import to_model_range
from fastddgan.metrics.cache import file_tag
from fastddgan.metrics.classifier import DomainClassifier


def exact_posterior_weights(x_k: torch.Tensor, images: torch.Tensor, abar: float, exclude: torch.Tensor,
                            chunk: int = 64) -> torch.Tensor:
    """(n, N) weights of q(x0 = images[i] | x_k[j]) under the empirical distribution of ``images`` without the
    image ``exclude[j]`` that x_k[j] was made from (leave-one-out), float64."""
    flat = images.reshape(images.shape[0], -1).double()
    sq = (flat ** 2).sum(1)
    out = []
    for rows, part in zip(exclude.split(chunk), x_k.reshape(x_k.shape[0], -1).double().split(chunk)):
        d2 = (part ** 2).sum(1, keepdim=True) - 2 * math.sqrt(abar) * part @ flat.T + abar * sq[None]
        d2[torch.arange(rows.shape[0]), rows] = math.inf
        out.append(torch.softmax(-d2 / (2 * (1 - abar)), dim=1))
    return torch.cat(out)


def label_histogram(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(n, K) int labels -> (n, num_classes) shares per row."""
    n, k = labels.shape
    return torch.zeros(n, num_classes, dtype=torch.float64).scatter_add_(
        1, labels, torch.ones(n, k, dtype=torch.float64)) / k


def mean_entropy(p: torch.Tensor) -> float:
    """Mean over rows of the entropy (nats) of the class distributions ``p`` (n, C)."""
    return float(-(p * p.clamp_min(1e-12).log()).sum(1).mean())


def diversity(hist: torch.Tensor) -> Dict[str, float]:
    return {"entropy": mean_entropy(hist), "distinct": float((hist > 0).sum(1).double().mean())}


def chain_copies(model, x_k: torch.Tensor, k: int, copies: int, vary: str, g: torch.Generator) -> torch.Tensor:
    """x0 from the generator's last k steps, ``copies`` times per start; ``vary``: which draws differ between the
    copies ("all", "z": the first step's latent only, "noise": the first step's posterior noise only)."""
    net, n = model.ema.module, x_k.shape[0]
    x = x_k.repeat_interleave(copies, 0)
    for i in reversed(range(k)):
        first = i == k - 1

        def draw(shape, fresh):
            return torch.randn((x.shape[0],) + shape, generator=g) if fresh else \
                torch.randn((n,) + shape, generator=g).repeat_interleave(copies, 0)

        z = draw((model.nz,), vary == "all" or (vary == "z" and first))
        noise = draw(tuple(x.shape[1:]), vary == "all" or (vary == "noise" and first))
        t = torch.full((x.shape[0],), i, dtype=torch.long)
        with torch.no_grad():
            x = ops.posterior_sample(net(x, z, t), x, t, model.schedule, noise=noise)
    return x.clamp(-1, 1) if model.clip_x0 else x


def probe(model, images: torch.Tensor, image_labels: torch.Tensor, clf: DomainClassifier, n: int, copies: int,
          starts: Sequence[int], seed: int) -> Dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(images.shape[0], generator=g)[:n]
    x0, src = images[order], image_labels[order]
    C = clf.num_classes
    spread, chains = [], []
    for k in range(1, model.T + 1):
        abar = float(model.schedule.alphas_cumprod[k - 1])
        x_k = ops.q_sample(x0, torch.full((n,), k - 1), model.schedule, generator=g)
        w = exact_posterior_weights(x_k, images, abar, order)
        a, b = (images[torch.multinomial(w.float(), 1, generator=g)[:, 0]] for _ in range(2))
        t = torch.full((n,), k - 1, dtype=torch.long)
        with torch.no_grad():
            g1, g2 = (model.ema.module(x_k, torch.randn(n, model.nz, generator=g), t) for _ in range(2))
        spread.append({"start": k, "sqrt_abar": math.sqrt(abar),
                       "generator_over_z": float((g1 - g2).abs().mean()),
                       "exact_posterior": float((a - b).abs().mean())})
        if k not in starts:
            continue
        post = torch.zeros(n, C, dtype=torch.float64).index_add_(1, image_labels, w)
        rows = {"exact posterior": {"entropy": mean_entropy(post),
                                    "same_as_start": float(post[torch.arange(n), src].mean()),
                                    "mix": post.mean(0).tolist()},
                f"exact posterior, {copies} draws": diversity(
                    label_histogram(torch.multinomial(post.float(), copies, replacement=True, generator=g), C))}
        for vary in ("all", "z", "noise"):
            labels = clf.logits(chain_copies(model, x_k, k, copies, vary, g)).argmax(1).view(n, copies)
            hist = label_histogram(labels, C)
            rows[f"generator, vary {vary}"] = {**diversity(hist),
                                               "same_as_start": float((labels == src[:, None]).double().mean()),
                                               "mix": hist.mean(0).tolist()}
        chains.append({"start": k, "sqrt_abar": math.sqrt(abar), "rows": rows})
    return {"latent_spread": spread, "class_diversity": chains}


def markdown(records: List[Dict[str, Any]], meta: Dict[str, Any]) -> str:
    md = ["# Does the generator use its latent z? (`benchmarks/latent_use_probe.py`)", "",
          f"n = {meta['n']} true x_k per run, K = {meta['k_draws']} chains per start, seed {meta['seed']}, "
          f"classifier `{meta['classifier']}`. Command: `{meta['command']}`", "",
          "## Spread of the x0 prediction over z (mean |G(x_k, z1) - G(x_k, z2)| per pixel) against the exact "
          "posterior's (mean |x0_a - x0_b|, x0 ~ q(x0 | x_k) of the training images less the start)", "",
          "| run | " + " | ".join(f"x_{s['start']} (sqrt abar {s['sqrt_abar']:.3g})"
                                  for s in records[0]["latent_spread"]) + " |",
          "|---|" + "---|" * len(records[0]["latent_spread"])]
    for r in records:
        md.append(f"| {r['name']} | " + " | ".join(f"{s['generator_over_z']:.3f} / {s['exact_posterior']:.3f}"
                                                   for s in r["latent_spread"]) + " |")
    md += ["", "## Classes of the chains from one x_k: entropy (nats) / distinct classes of K, share equal to the "
           "start image's class", ""]
    for r in records:
        for c in r["class_diversity"]:
            md += [f"**{r['name']}, from true x_{c['start']}** (sqrt abar {c['sqrt_abar']:.3g})", "",
                   "| draws | entropy | distinct of K | same class as start | mix 0-9 |", "|---|---:|---:|---:|---|"]
            for name, row in c["rows"].items():
                cells = [f"{row[key]:.3g}" if key in row else "—" for key in ("entropy", "distinct", "same_as_start")]
                mix = " ".join(f"{v:.3f}" for v in row["mix"]) if "mix" in row else "—"
                md.append(f"| {name} | " + " | ".join(cells) + f" | {mix} |")
            md.append("")
    return "\n".join(md) + "\n"


def run_name(path: str) -> str:
    """The run folder's name of RUN/checkpoints/final.pt or RUN/export, else the file's name without .pt."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    if len(parts) >= 3 and parts[-2] == "checkpoints":
        return parts[-3]
    if parts[-1] == "export" and len(parts) >= 2:
        return parts[-2]
    return parts[-1].removesuffix(".pt")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="latent_use_probe.py", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="DDGAN checkpoints (final.pt) or exports of image runs")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--classifier", required=True, help="domain classifier file (the study's)")
    p.add_argument("--n", type=int, default=100, help="true x_k per run (default 100)")
    p.add_argument("--k-draws", type=int, default=10, help="chains per start (default 10)")
    p.add_argument("--starts", default="3,2", help="starts k of the class-diversity rows (default 3,2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    p.add_argument("--md")
    args = p.parse_args(argv)
    try:
        starts = [int(s) for s in args.starts.split(",")]
    except ValueError:
        p.error(f"--starts: expected comma-separated step indices, got {args.starts!r}")
    for name, value in (("--n", args.n), ("--k-draws", args.k_draws)):
        if value < 2:
            p.error(f"{name}: expected an integer >= 2, got {value}")
    clf = DomainClassifier.load(args.classifier)
    records, data = [], None
    for path in args.checkpoints:
        model = load(path, map_location="cpu")
        if not hasattr(model, "generator"):
            p.error(f"checkpoints: {path} is not a DDGAN")
        bad = [k for k in starts if not 1 <= k <= model.T]
        if bad:
            p.error(f"--starts: {bad} outside 1..T = {model.T} for {path}")
        if data is None:
            config = E.run_config(model)
            data = E.load_data(config["dataset"], args.data_dir, config.get("image_size"), config.get("channels"))
            images = to_model_range(data.images)
            image_labels = clf.logits(images).argmax(1)
        record = probe(model, images, image_labels, clf, args.n, args.k_draws, starts, args.seed)
        records.append({"name": run_name(path), "path": path, **record})
        print(f"{path}: done", file=sys.stderr)
    meta = {"n": args.n, "k_draws": args.k_draws, "seed": args.seed, "starts": starts,
            "classifier": file_tag(args.classifier),
            "command": "python benchmarks/latent_use_probe.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "threads": torch.get_num_threads()}
    if args.json:
        atomic_write_json(args.json, {"meta": meta, "runs": records})
    text = markdown(records, meta)
    if args.md:
        atomic_write(args.md, lambda f: f.write(text.encode()))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
