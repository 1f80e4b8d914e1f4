"""Domain metrics from the classifier trained on the data set itself ("FID-dom", "IS-dom").

FID-dom is the Fréchet distance between Gaussians fitted to the classifier's penultimate features (the same formula
as FID, :func:`fastddgan.metrics.frechet_distance`); precision-dom / recall-dom are improved precision and recall
(Kynkäänniemi et al. 2019) in the same features; IS-dom is exp(E_x KL(p(y|x) || p(y))) with the classifier's
class probabilities (at most the number of classes). These are not FID / IS and are never reported under those
names: values depend on the classifier, so compare only numbers computed with the same saved classifier file.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch

from .classifier import DomainClassifier
from .fid import ArrayLike, feature_stats, frechet_distance
from .inception import inception_score
from .precision_recall import precision_recall

FID_DOM = "FID-dom"
IS_DOM = "IS-dom"
PRECISION_DOM = "precision-dom"
RECALL_DOM = "recall-dom"


def _real_stats(stats_real) -> Tuple[ArrayLike, ArrayLike]:
    if not isinstance(stats_real, (tuple, list)) or len(stats_real) not in (2, 3):
        raise TypeError("stats_real: expected (mu, sigma) or load_stats()'s (mu, sigma, meta), got "
                        f"{type(stats_real).__name__}")
    return stats_real[0], stats_real[1]


def fid_dom(features_fake: ArrayLike, stats_real) -> float:
    """FID-dom: Fréchet distance between the classifier features of generated images (N, d) and the real
    statistics ``stats_real`` = (mu, sigma) of the same classifier (not comparable with Inception FID)."""
    mu, sigma = feature_stats(features_fake)
    mu_r, sigma_r = _real_stats(stats_real)
    return frechet_distance(mu, sigma, mu_r, sigma_r)


def domain_precision_recall(features_fake: ArrayLike, features_real: ArrayLike, k: int = 3) -> Dict[str, float]:
    """{"precision-dom", "recall-dom"}: improved precision and recall (:func:`precision_recall`, k nearest
    neighbours) of generated against real images in the classifier's features (use as many real images as
    generated ones: both numbers depend on the set sizes)."""
    pr = precision_recall(features_real, features_fake, k)
    return {PRECISION_DOM: pr["precision"], RECALL_DOM: pr["recall"]}


def is_dom(logits: ArrayLike, splits: int = 10) -> Tuple[float, float]:
    """IS-dom: (mean, std) of the Inception-Score formula over ``splits`` with the domain classifier's logits
    (at most its number of classes; not comparable with Inception IS)."""
    return inception_score(logits, splits=splits)


def class_coverage(logits: ArrayLike, min_share: Optional[float] = None) -> Dict[str, Any]:
    """How the generated images spread over the classifier's classes: ``classes`` = the number of classes that
    receive at least ``min_share`` of the predictions (default: half a uniform share, 0.5 / K), ``class-min-share``
    the smallest class's share and ``class-shares`` every class's share (argmax predictions)."""
    logits = torch.as_tensor(logits)
    if logits.dim() != 2 or logits.shape[0] == 0:
        raise ValueError(f"logits: expected (N, K) with N >= 1, got shape {tuple(logits.shape)}")
    k = logits.shape[1]
    min_share = 0.5 / k if min_share is None else float(min_share)
    shares = torch.bincount(logits.argmax(1), minlength=k).double() / logits.shape[0]
    return {"classes": int((shares >= min_share).sum()), "class-min-share": float(shares.min()),
            "class-shares": [round(float(v), 4) for v in shares]}


def domain_metrics(classifier: DomainClassifier, images: torch.Tensor, stats_real, splits: int = 10,
                   batch_size: int = 500) -> Dict[str, float]:
    """{"FID-dom", "IS-dom", "IS-dom-std"} of generated ``images`` against the real statistics of
    ``classifier``'s features."""
    feats, logits = classifier.features_and_logits(images, batch_size)
    mean, std = is_dom(logits, splits)
    return {FID_DOM: fid_dom(feats, stats_real), IS_DOM: mean, IS_DOM + "-std": std}
