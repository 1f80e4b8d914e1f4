"""The Fréchet distance between Gaussians fitted to feature sets (FID and every FID-like score), in float64.

    d^2 = ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})

``feature_stats`` fits (mu, S) to one set (unbiased covariance), ``weighted_feature_stats`` to a set whose rows carry
weights; ``RunningStats`` does what ``feature_stats`` does over batches without holding the features;
``save_stats`` / ``load_stats`` keep reference statistics in an ``.npz`` file (the keys ``mu`` and ``sigma`` of
pytorch-fid's statistics files, plus our metadata).
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch

from .._io import PathLike, atomic_write

ArrayLike = Union[np.ndarray, torch.Tensor]
STATS_FORMAT = "fastddgan.metrics.stats"
STATS_VERSION = 1


def _float64(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    if isinstance(x, np.ndarray):
        return x.astype(np.float64, copy=False)
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def _features(features: ArrayLike, name: str = "features") -> np.ndarray:
    x = _float64(features, name)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (samples, dims) array, got shape {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"{name}: expected at least 2 rows (samples) for a covariance, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


def feature_stats(features: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """(mu (d,), sigma (d, d)) of ``features`` (n, d), rows are samples; float64, unbiased covariance (n - 1)."""
    x = _features(features)
    mu = x.mean(axis=0)
    xc = x - mu
    sigma = xc.T @ xc / (x.shape[0] - 1)
    return mu, sigma


def weighted_feature_stats(features: ArrayLike, weights: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of ``features`` (n, d) whose rows carry non-negative ``weights`` (n,), float64:
    mu = sum_i w_i x_i / V1, sigma = sum_i w_i (x_i - mu)(x_i - mu)^T / (V1 - V2 / V1), V1 = sum w, V2 = sum w^2
    (the unbiased covariance of reliability weights: equal weights give :func:`feature_stats` exactly, and scaling
    every weight changes nothing). At least two rows need a positive weight."""
    x = _features(features)
    w = _float64(weights, "weights")
    if w.shape != (x.shape[0],):
        raise ValueError(f"weights: expected shape ({x.shape[0]},), one per row of features, got {tuple(w.shape)}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights: expected finite non-negative values")
    positive = int((w > 0).sum())
    if positive < 2:
        raise ValueError(f"weights: expected at least 2 positive weights for a covariance, got {positive}")
    v1, v2 = w.sum(), (w * w).sum()
    mu = w @ x / v1
    xc = x - mu
    sigma = (xc * w[:, None]).T @ xc / (v1 - v2 / v1)
    return mu, 0.5 * (sigma + sigma.T)


def _check_stats(mu: ArrayLike, sigma: ArrayLike, which: str) -> Tuple[np.ndarray, np.ndarray]:
    m, s = _float64(mu, f"mu{which}"), _float64(sigma, f"sigma{which}")
    if m.ndim != 1:
        raise ValueError(f"mu{which}: expected a 1-D mean vector, got shape {tuple(m.shape)}")
    if s.shape != (m.shape[0], m.shape[0]):
        raise ValueError(f"sigma{which}: expected shape {(m.shape[0], m.shape[0])} to match mu{which}, "
                         f"got {tuple(s.shape)}")
    if not (np.isfinite(m).all() and np.isfinite(s).all()):
        raise ValueError(f"mu{which}/sigma{which}: contain NaN or infinite values")
    return m, 0.5 * (s + s.T)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (eigenvalues below 0, from rounding, are clamped to 0)."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr (S1 S2)^{1/2} for symmetric PSD S1, S2.

    S1 S2 = R (R S2) with R = S1^{1/2} has the eigenvalues of R S2 R, which is symmetric PSD, so the trace is
    sum_i sqrt(lambda_i(R S2 R)) from a symmetric eigensolver (real eigenvalues; tiny negative ones from rounding
    are clamped to 0). Unlike ``scipy.linalg.sqrtm(S1 @ S2)`` this needs no complex arithmetic and no eps-offset
    retry for singular covariances (fewer samples than dimensions).
    """
    r = _psd_sqrt(sigma1)
    m = r @ sigma2 @ r
    lam = np.linalg.eigvalsh(0.5 * (m + m.T))
    return float(np.sqrt(np.clip(lam, 0.0, None)).sum())


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}) in float64 (see :func:`trace_sqrt_product` for the
    square root). The distance is >= 0; a rounding residue below 0 (identical statistics) is returned as 0."""
    m1, s1 = _check_stats(mu1, sigma1, "1")
    m2, s2 = _check_stats(mu2, sigma2, "2")
    if m1.shape != m2.shape:
        raise ValueError(f"mu2: expected dimension {m1.shape[0]} to match mu1, got {m2.shape[0]}")
    diff = m1 - m2
    d2 = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))
    return max(d2, 0.0)


class RunningStats:
    """Mean and unbiased covariance of feature batches accumulated in float64 without keeping the features.

    Batches are merged with the pairwise update of Chan et al.: with batch mean m_b, scatter
    S_b = sum (x - m_b)(x - m_b)^T and delta = m_b - mean, the totals become n' = n + n_b,
    mean' = mean + delta n_b / n', M2' = M2 + S_b + delta delta^T n n_b / n' (no cancellation of large sums).
    The sums stay on the device of the first batch; ``compute`` returns numpy arrays.
    """

    def __init__(self) -> None:
        self.n = 0
        self._mean: Optional[torch.Tensor] = None
        self._m2: Optional[torch.Tensor] = None

    @property
    def dim(self) -> Optional[int]:
        return None if self._mean is None else int(self._mean.shape[0])

    def update(self, features: ArrayLike) -> "RunningStats":
        """Add the rows of ``features`` (n, d)."""
        if isinstance(features, np.ndarray):
            features = torch.from_numpy(features)
        if not isinstance(features, torch.Tensor):
            raise TypeError(f"features: expected a torch.Tensor or numpy.ndarray, got {type(features).__name__}")
        if features.dim() != 2:
            raise ValueError(f"features: expected a 2-D (samples, dims) batch, got shape {tuple(features.shape)}")
        if self._mean is not None and features.shape[1] != self._mean.shape[0]:
            raise ValueError(f"features: expected {self._mean.shape[0]} columns like the earlier batches, "
                             f"got {features.shape[1]}")
        if features.shape[0] == 0:
            return self
        device = features.device if self._mean is None else self._mean.device
        x = features.detach().to(device, torch.float64)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("features: contains NaN or infinite values")
        nb = x.shape[0]
        mb = x.mean(dim=0)
        xc = x - mb
        sb = xc.T @ xc
        if self._mean is None:
            self._mean, self._m2 = mb, sb
        else:
            n = self.n + nb
            delta = mb - self._mean
            self._mean = self._mean + delta * (nb / n)
            self._m2 = self._m2 + sb + torch.outer(delta, delta) * (self.n * nb / n)
        self.n += nb
        return self

    def compute(self) -> Tuple[np.ndarray, np.ndarray]:
        """(mu (d,), sigma (d, d)) in float64 of all rows so far (unbiased covariance)."""
        if self.n < 2:
            raise ValueError(f"RunningStats: need at least 2 samples for a covariance, have {self.n}")
        mu = self._mean.cpu().numpy()
        sigma = (self._m2 / (self.n - 1)).cpu().numpy()
        return mu, 0.5 * (sigma + sigma.T)

    def state_dict(self) -> Dict[str, Any]:
        return {"n": self.n,
                "mean": None if self._mean is None else self._mean.cpu(),
                "m2": None if self._m2 is None else self._m2.cpu()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if not isinstance(state, dict) or set(state) != {"n", "mean", "m2"}:
            raise ValueError("state: expected a RunningStats.state_dict() (keys 'n', 'mean', 'm2')")
        self.n = int(state["n"])
        self._mean = None if state["mean"] is None else state["mean"].to(torch.float64)
        self._m2 = None if state["m2"] is None else state["m2"].to(torch.float64)


def save_stats(path: PathLike, mu: ArrayLike, sigma: ArrayLike, meta: Optional[Dict[str, Any]] = None) -> None:
    """Write (mu, sigma) and a JSON-serialisable ``meta`` dict (feature extractor, data set, n, ...) to the ``.npz``
    file ``path`` atomically. The arrays are stored under ``mu`` and ``sigma`` like pytorch-fid's statistics."""
    m, s = _check_stats(mu, sigma, "")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta: expected a dict or None, got {type(meta).__name__}")
    try:
        meta_json = json.dumps(meta or {}, sort_keys=True)
    except TypeError as err:
        raise TypeError(f"meta: expected JSON-serialisable values ({err})") from None
    buf = io.BytesIO()
    np.savez(buf, mu=m, sigma=s, meta=np.array(meta_json), format=np.array(STATS_FORMAT),
             version=np.array(STATS_VERSION))
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def load_stats(path: PathLike) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """(mu, sigma, meta) from an ``.npz`` written by :func:`save_stats`; any ``.npz`` with ``mu`` and ``sigma``
    arrays (pytorch-fid's statistics files) is read too, with ``meta == {}``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no statistics file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except Exception as err:  # noqa: BLE001 - anything numpy cannot read is not a statistics file
        raise ValueError(f"path: {path!r} is not an .npz statistics file, or it is truncated "
                         f"({type(err).__name__}: {err})") from None
    if "mu" not in data or "sigma" not in data:
        raise ValueError(f"path: {path!r} has no 'mu' and 'sigma' arrays (keys: {sorted(data)})")
    if "version" in data and int(data["version"]) != STATS_VERSION:
        raise ValueError(f"path: {path!r} has statistics version {int(data['version'])}; this fastddgan reads "
                         f"version {STATS_VERSION}")
    mu, sigma = _check_stats(data["mu"], data["sigma"], "")
    meta = json.loads(str(data["meta"])) if "meta" in data else {}
    return mu, sigma, meta
