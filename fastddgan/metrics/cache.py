"""Reference statistics of the real data, cached on disk, and where ``python -m fastddgan.evaluate`` keeps them.

    default_cache_dir(data_dir)         DATA_DIR/fastddgan-cache
    classifier_path(cache_dir, name)    CACHE_DIR/classifier-NAME.pt, the data set's domain classifier
    real_stats(dataset, feature, featurize, cache_dir)
                                        (mu, sigma) of the features of the whole (train) data set, cached as
                                        CACHE_DIR/stats-NAME-FEATURE-FINGERPRINT.npz
    real_class_shares(dataset, classifier, tag, cache_dir)
                                        the share of each class among a classifier's argmax labels of the whole
                                        (train) data set, cached as CACHE_DIR/shares-NAME-TAG-FINGERPRINT.json
    file_tag(path)                      a short hash of a file's bytes (a classifier's features are cached under it)

The set's fingerprint covers its number of images, size and channels and its pixels (for a folder: its files'
names, sizes and times), so other images are never served these statistics.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import List

import torch

from ..data.convert import to_model_range
from ..data.dataset import images_at
from .._io import atomic_write_json
from .fid import RunningStats, load_stats, save_stats


def default_cache_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "fastddgan-cache")


def _safe_name(dataset: str) -> str:
    return dataset.replace(":", "_").replace(os.sep, "_")


def classifier_path(cache_dir: str, dataset: str) -> str:
    return os.path.join(cache_dir, f"classifier-{_safe_name(dataset)}.pt")


def file_tag(path: str) -> str:
    """The first 10 hex digits of the SHA-1 of the file at ``path``."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:10]


def real_stats(dataset, feature_name: str, featurize, cache_dir: str, batch_size: int = 500):
    """(mu, sigma) of ``featurize`` over the whole (train) data set, cached as an .npz per data set, feature and
    the set's fingerprint (so a folder whose files changed, or another image size or channel count, is not served
    the statistics of other images). ``featurize`` gets batches in [-1, 1] (``to_model_range`` of the uint8
    images)."""
    name, tag = _safe_name(dataset.name), dataset.fingerprint()
    path = os.path.join(cache_dir, f"stats-{name}-{feature_name}-{tag}.npz")
    if os.path.isfile(path):
        mu, sigma, _ = load_stats(path)
        return mu, sigma
    stats = RunningStats()
    for i in range(0, len(dataset), batch_size):
        stats.update(featurize(to_model_range(images_at(dataset, slice(i, i + batch_size)))))
    mu, sigma = stats.compute()
    save_stats(path, mu, sigma, {"dataset": dataset.name, "feature": feature_name, "n": len(dataset),
                                 "channels": dataset.channels, "image_size": dataset.image_size,
                                 "fingerprint": tag, "split": "train"})
    return mu, sigma


def real_class_shares(dataset, classifier, tag: str, cache_dir: str, batch_size: int = 500) -> List[float]:
    """Each class's share of ``classifier``'s argmax labels over the whole (train) data set (the real class mix
    as the classifier sees it: FID-dom-balanced weighs the samples' own labels by the same classifier), cached as
    JSON per data set, classifier ``tag`` and the set's fingerprint."""
    path = os.path.join(cache_dir, f"shares-{_safe_name(dataset.name)}-{tag}-{dataset.fingerprint()}.json")
    if os.path.isfile(path):
        with open(path) as f:
            return [float(v) for v in json.load(f)["shares"]]
    counts = torch.zeros(classifier.num_classes, dtype=torch.float64)
    for i in range(0, len(dataset), batch_size):
        logits = classifier.logits(to_model_range(images_at(dataset, slice(i, i + batch_size))))
        counts += torch.bincount(logits.argmax(1).cpu(), minlength=classifier.num_classes).double()
    shares = (counts / counts.sum()).tolist()
    atomic_write_json(path, {"dataset": dataset.name, "classifier": tag, "n": len(dataset), "shares": shares})
    return shares
