#!/usr/bin/env python
"""How much of a run's FID-dom its class mix alone explains: FID-dom of real digits drawn with the run's class mix.

    OMP_NUM_THREADS=1 python benchmarks/class_mix_fid.py EVALUATION... --data-dir DATA \
        --classifier benchmarks/results/study-mnist5k/classifier-mnist5k.pt [--n 1000] [--draws 3] [--json F] [--md F]

Each EVALUATION is a ``python -m fastddgan.evaluate`` record (the ``evaluation-*.pt`` of a study run, or its JSON)
with the class shares of its samples as the domain classifier labels them (``class-shares``). For each one, ``n``
real images are drawn without replacement with those shares (by their true labels; ``--draws`` draws, seeds
0, 1, ...) and scored with the same classifier and reference statistics as the run: the FID-dom a generator with
perfect digits and this class mix would get. Rows "uniform" (equal shares, the same stratified draw) and
"random" (``n`` real images drawn at random, as ``evaluate`` draws the real side) give the floors. Every draw
is also scored with FID-dom-balanced (the floor of that score), and a record's own FID-dom-balanced is shown when
it has one.

FID is not additive, so the mix-only FID-dom is a lower bound of what the mix costs, not a term to subtract; the
shares are the classifier's labels of generated digits (malformed ones may lean to some classes), so a skewed mix
can also be a quality effect. CPU, one thread is plenty (3 draws of 1,000 digits: seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from fastddgan import evaluate as E
from fastddgan._io import atomic_write, atomic_write_json, load_tensors
from fastddgan.data.convert import to_model_range
from fastddgan.data.dataset import images_at


def stratified_index(labels: torch.Tensor, shares: Sequence[float], n: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``n`` items (rounded per class) drawn without replacement, class ``c`` getting ``shares[c]`` of
    them; a class with fewer items than its count raises a ValueError."""
    total = float(sum(shares))
    if total <= 0 or any(s < 0 for s in shares):
        raise ValueError(f"shares: expected non-negative class shares with a positive sum, got {list(shares)}")
    picks = []
    for c, share in enumerate(shares):
        pool = (labels == c).nonzero().flatten()
        k = int(round(share / total * n))
        if k > len(pool):
            raise ValueError(f"n: {k} items of class {c} wanted, the data set has {len(pool)}")
        picks.append(pool[torch.randperm(len(pool), generator=generator)[:k]])
    return torch.cat(picks)


def read_record(path: str) -> dict:
    """An evaluation record (``.pt`` or ``.json``) with its metrics' class shares."""
    if not os.path.isfile(path):
        raise ValueError(f"EVALUATION: no file at {path!r}")
    if path.endswith(".json"):
        with open(path) as f:
            record = json.load(f)
    else:
        record = load_tensors(path)
    metrics = record.get("metrics", {}) if isinstance(record, dict) else {}
    if "class-shares" not in metrics:
        raise ValueError(f"EVALUATION: {path!r} has no metrics/class-shares (an evaluation with fid-dom or is-dom)")
    return record


def mix_fid(data, labels: torch.Tensor, shares: Optional[Sequence[float]], n: int, draws: int, clf: str,
            cache_dir: str) -> List[Tuple[float, float]]:
    """(FID-dom, FID-dom-balanced) of ``draws`` draws of ``n`` real images with class ``shares`` (None: drawn at
    random)."""
    fids = []
    for seed in range(draws):
        if shares is None:  # the real side of evaluate's precision / recall
            x = E.real_images(data, n, seed)
        else:
            index = stratified_index(labels, shares, n, torch.Generator().manual_seed(seed))
            x = to_model_range(images_at(data, index))
        m = E.scores(x, ["fid-dom"], data, "mnist5k", clf, None, cache_dir, "cpu", seed)
        fids.append((m["FID-dom"], m["FID-dom-balanced"]))
    return fids


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("evaluations", nargs="+", metavar="EVALUATION")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--classifier", required=True)
    p.add_argument("--cache-dir", default=None, help="reference statistics (default: DATA_DIR/fastddgan-cache)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--json", default=None)
    p.add_argument("--md", default=None)
    a = p.parse_args(argv)
    for name in ("n", "draws"):
        if getattr(a, name) < 1:
            p.error(f"--{name}: expected a positive integer, got {getattr(a, name)}")
    cache = a.cache_dir or os.path.join(a.data_dir, "fastddgan-cache")
    data = E.load_data("mnist5k", a.data_dir, None, None)
    labels = torch.as_tensor(data.labels)
    try:
        records = [(path, read_record(path)["metrics"]) for path in a.evaluations]
    except ValueError as err:
        p.error(str(err))
    rows = []
    for name, shares, measured, balanced_measured in (
            [("random", None, None, None), ("uniform", [0.1] * 10, None, None)]
            + [(path, m["class-shares"], m.get("FID-dom"), m.get("FID-dom-balanced")) for path, m in records]):
        pairs = mix_fid(data, labels, shares, a.n, a.draws, a.classifier, cache)
        fids, balanced = [f for f, _ in pairs], [b for _, b in pairs]
        row = {"evaluation": name, "class_shares": shares, "fid_dom_measured": measured,
               "fid_dom_balanced_measured": balanced_measured,
               "mix_only_fid_dom_mean": statistics.mean(fids), "mix_only_fid_dom_std": float(np.std(fids)),
               "draws": fids, "mix_only_fid_dom_balanced_mean": statistics.mean(balanced),
               "mix_only_fid_dom_balanced_std": float(np.std(balanced)), "draws_balanced": balanced}
        rows.append(row)
        print(f"{name}: measured {measured if measured is None else round(measured, 2)}, mix only "
              f"{row['mix_only_fid_dom_mean']:.2f} ± {row['mix_only_fid_dom_std']:.2f}", flush=True)
    meta = {"n": a.n, "draws": a.draws, "classifier": a.classifier, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "command": "python benchmarks/class_mix_fid.py " + " ".join(
                sys.argv[1:] if argv is None else argv)}
    if a.json:
        atomic_write_json(a.json, {"meta": meta, "rows": rows})
    if a.md:
        lines = [f"Command: `{meta['command']}`; n = {a.n}, {a.draws} draws (mean ± std); torch {meta['torch']}.", "",
                 "| evaluation | FID-dom measured | FID-dom-balanced measured | FID-dom of real digits in its class "
                 "mix (balanced) | class shares 0-9 |",
                 "|---|---:|---:|---:|---|"]
        for r in rows:
            shares = "—" if r["class_shares"] is None else " ".join(f"{s:.3f}" for s in r["class_shares"])
            measured, balanced = ("—" if r[k] is None else f"{r[k]:.2f}"
                                  for k in ("fid_dom_measured", "fid_dom_balanced_measured"))
            name = "/".join(r["evaluation"].split(os.sep)[-2:])  # the run (or folder) and the file
            lines.append(f"| {name} | {measured} | {balanced} | {r['mix_only_fid_dom_mean']:.2f} ± "
                         f"{r['mix_only_fid_dom_std']:.2f} ({r['mix_only_fid_dom_balanced_mean']:.2f}) | {shares} |")
        atomic_write(a.md, lambda f: f.write(("\n".join(lines) + "\n").encode()))
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
