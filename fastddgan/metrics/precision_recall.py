"""Improved precision and recall (Kynkäänniemi et al. 2019): how much of the generated distribution lies on the
real data's manifold (precision: quality) and how much of the real manifold the generated samples cover (recall:
diversity), in a feature space.

The manifold of a set of features Phi is the union of the balls B(phi, r_k(phi)), phi in Phi, where r_k(phi) is the
distance from phi to its k-th nearest neighbour in Phi (itself excluded). With f(x, Phi) = 1 when x lies in that
union,

    precision = mean over generated x of f(x, Phi_real),    recall = mean over real x of f(x, Phi_generated).

Both are in [0, 1]; the paper uses k = 3 and equal set sizes (the numbers depend on both; compare like with like).
FID folds the two into one number; a model whose FID is behind can be told apart as imprecise (low precision) or
as covering too little (low recall).
"""

from __future__ import annotations

from typing import Dict

import torch

from .fid import ArrayLike

PRECISION = "precision"
RECALL = "recall"


def _features(x: ArrayLike, name: str) -> torch.Tensor:
    x = torch.as_tensor(x).detach().cpu().double()
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"{name}: expected features (N, d) with N >= 2, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # the direct formula, not |a|^2 + |b|^2 - 2ab: a row's distance to itself is exactly 0
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def knn_radii(features: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """r_k(phi): the distance from each row to its k-th nearest other row (N,)."""
    radii = []
    for i in range(0, features.shape[0], chunk):
        d = _distances(features[i:i + chunk], features)
        # the k+1 smallest include the row itself (distance 0)
        radii.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def in_manifold(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """f(x, Phi) for each query row x: whether some support row phi has |x - phi| <= r_k(phi) (N_queries,) bool."""
    inside = []
    for i in range(0, queries.shape[0], chunk):
        inside.append((_distances(queries[i:i + chunk], support) <= radii).any(dim=1))
    return torch.cat(inside)


def precision_recall(features_real: ArrayLike, features_fake: ArrayLike, k: int = 3) -> Dict[str, float]:
    """{"precision", "recall"} of generated features (N_fake, d) against real features (N_real, d), k nearest
    neighbours (both sets need more than k rows)."""
    real = _features(features_real, "features_real")
    fake = _features(features_fake, "features_fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"features_fake: expected {real.shape[1]} features per row like features_real, got "
                         f"{fake.shape[1]}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"k: each set needs more than k = {k} rows, got {real.shape[0]} real and "
                         f"{fake.shape[0]} generated")
    precision = in_manifold(fake, real, knn_radii(real, k)).double().mean()
    recall = in_manifold(real, fake, knn_radii(fake, k)).double().mean()
    return {PRECISION: float(precision), RECALL: float(recall)}


__all__ = ["precision_recall", "knn_radii", "in_manifold", "PRECISION", "RECALL"]
