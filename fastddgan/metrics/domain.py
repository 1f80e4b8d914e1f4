"""Domain metrics from the classifier trained on the data set itself ("FID-dom", "FID-dom-balanced", "IS-dom").

FID-dom is the Fréchet distance between Gaussians fitted to the classifier's penultimate features (the same formula
as FID, :func:`fastddgan.metrics.frechet_distance`); precision-dom / recall-dom are improved precision and recall
(Kynkäänniemi et al. 2019) in the same features; FID-dom-balanced is FID-dom with the samples reweighted to the
real data's class mix (the quality of the digits apart from their class proportions); label-accuracy is the share of
class-conditional samples the classifier assigns to the class they were drawn for; IS-dom is
exp(E_x KL(p(y|x) || p(y))) with the classifier's class probabilities (at most the number of classes). These are
not FID / IS and are never reported under those names: values depend on the classifier, so compare only numbers
computed with the same saved classifier file.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from .classifier import DomainClassifier
from .fid import ArrayLike, feature_stats, frechet_distance, weighted_feature_stats
from .inception import inception_score
from .precision_recall import precision_recall

FID_DOM = "FID-dom"
FID_DOM_BALANCED = "FID-dom-balanced"
IS_DOM = "IS-dom"
PRECISION_DOM = "precision-dom"
RECALL_DOM = "recall-dom"
LABEL_ACCURACY = "label-accuracy"


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


def _class_indices(labels: ArrayLike, num_classes: int, count: Optional[int] = None) -> torch.Tensor:
    """``labels`` as a tensor, checked: 1-D, non-empty (``count`` long when given), integer, values in
    [0, num_classes)."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.numel() == 0 or (count is not None and labels.numel() != count) or \
            labels.dtype.is_floating_point or bool((labels < 0).any()) or bool((labels >= num_classes).any()):
        expected = "a non-empty 1-D tensor of" if count is None else f"{count}"
        raise ValueError(f"labels: expected {expected} class indices in [0, {num_classes}), got shape "
                         f"{tuple(labels.shape)} ({labels.dtype})")
    return labels


def class_balance_weights(labels: torch.Tensor, real_shares: Sequence[float]) -> torch.Tensor:
    """Per-sample weights (float64) that give the samples' classes ``labels`` (N,) the real data's class mix:
    w_i = p_real(c_i) / p_fake(c_i), with p_fake the samples' own class shares and p_real = ``real_shares``
    renormalised over the classes the samples hold (a class with no sample cannot be given its share: the real
    statistics still hold it, so its absence still costs). A class with few samples gets a large weight: the
    balanced score is noisier the more skewed the mix."""
    shares = torch.as_tensor(real_shares, dtype=torch.float64)
    if shares.dim() != 1 or not bool(torch.isfinite(shares).all()) or bool((shares < 0).any()):
        raise ValueError(f"real_shares: expected one finite non-negative share per class, got {shares.tolist()}")
    labels = _class_indices(labels, len(shares))
    counts = torch.bincount(labels, minlength=len(shares)).double()
    target = torch.where(counts > 0, shares, torch.zeros_like(shares))
    if float(target.sum()) <= 0:
        raise ValueError("real_shares: the classes of the samples have no real share to balance them to")
    target = target / target.sum()
    return (target / counts.clamp(min=1) * labels.numel())[labels]


def fid_dom_balanced(features_fake: ArrayLike, logits_fake: ArrayLike, stats_real,
                     real_shares: Sequence[float]) -> float:
    """FID-dom of the samples reweighted to the real data's class mix (:func:`class_balance_weights` on the
    classifier's argmax labels; weighted mean and covariance, :func:`fastddgan.metrics.weighted_feature_stats`):
    what FID-dom would be if the same digits came in the data's class proportions. Compare with FID-dom: the
    difference is what the class mix costs."""
    logits = torch.as_tensor(logits_fake)
    if logits.dim() != 2:
        raise ValueError(f"logits_fake: expected (N, K), got shape {tuple(logits.shape)}")
    weights = class_balance_weights(logits.argmax(1), real_shares)
    mu, sigma = weighted_feature_stats(features_fake, weights)
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


def label_accuracy(logits: ArrayLike, labels: ArrayLike) -> float:
    """The share of class-conditional samples whose classifier prediction (argmax of ``logits``, (N, K)) is the
    class they were drawn for (``labels``, (N,)): how well a conditional model, and its guidance, follows its
    labels (the classifier's own held-out accuracy on real images is the ceiling)."""
    logits = torch.as_tensor(logits)
    if logits.dim() != 2 or logits.shape[0] == 0:
        raise ValueError(f"logits: expected (N, K) with N >= 1, got shape {tuple(logits.shape)}")
    labels = _class_indices(labels, logits.shape[1], count=logits.shape[0])
    return float((logits.argmax(1) == labels.to(logits.device)).double().mean())


def domain_metrics(classifier: DomainClassifier, images: torch.Tensor, stats_real, splits: int = 10,
                   batch_size: int = 500) -> Dict[str, float]:
    """{"FID-dom", "IS-dom", "IS-dom-std"} of generated ``images`` against the real statistics of
    ``classifier``'s features."""
    feats, logits = classifier.features_and_logits(images, batch_size)
    mean, std = is_dom(logits, splits)
    return {FID_DOM: fid_dom(feats, stats_real), IS_DOM: mean, IS_DOM + "-std": std}
