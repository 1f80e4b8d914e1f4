"""Exact metrics for 2-D samples against the toy data sets of :mod:`fastddgan.data.toy2d`.

    mode_coverage / high_quality_fraction   through Mixture2D.mode_stats (modes, samples within 3 std)
    sliced_wasserstein  SW_1(x, y) = E_u W_1(<x, u>, <y, u>), u uniform on the unit circle
    mmd                 unbiased MMD^2 with k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2))

For a sample of the true mixture the expected high-quality share is P(chi^2_2 <= 9) = 1 - exp(-4.5) = 0.989.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch

from .. import _checks
from ..data.toy2d import NAMES, TOY2D, Mixture2D, toy2d

# From the within-mode scale (std 0.02 for ring8, 0.05 for grid25) to the layout scale (ring radius 2, grid
# spacing 2, grid extent 8): small bandwidths see mode shape, large ones see how the mass is spread over modes.
DEFAULT_BANDWIDTHS = (0.05, 0.2, 1.0, 4.0)


def _points(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != 2 or x.shape[0] < 1:
        raise ValueError(f"{name}: expected an (n >= 1, 2) tensor of 2-D points, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    return x.detach().to("cpu", torch.float64)


def _mixture(mixture: Union[str, Mixture2D]) -> Mixture2D:
    if isinstance(mixture, Mixture2D):
        return mixture
    if isinstance(mixture, str) and mixture in TOY2D:
        return TOY2D[mixture]
    raise ValueError(f"mixture: expected a Mixture2D or one of {tuple(TOY2D)}, got {mixture!r}")


def mode_coverage(samples: torch.Tensor, mixture: Union[str, Mixture2D], min_share: Optional[float] = None) -> int:
    """Number of modes holding at least ``min_share`` of the samples within 3 std of their centre (default
    1 / (4 K), a quarter of a fair share); see ``Mixture2D.mode_stats``."""
    return _mixture(mixture).mode_stats(_points(samples, "samples"), min_share)["modes_covered"]


def high_quality_fraction(samples: torch.Tensor, mixture: Union[str, Mixture2D]) -> float:
    """Share of samples within 3 std of some mode centre (0.989 expected for the true mixture)."""
    return _mixture(mixture).mode_stats(_points(samples, "samples"))["high_quality"]


def _w1_sorted(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """W_1 per column between the empirical distributions of sorted columns xs (n, P) and ys (m, P).

    W_1 = int_0^1 |F^-1(q) - G^-1(q)| dq, and both quantile functions are steps with jumps at i/n and j/m, so
    the integral is exact as a sum over the merged breakpoints (equal sizes: the mean of |xs - ys|).
    """
    n, m = xs.shape[0], ys.shape[0]
    if n == m:
        return (xs - ys).abs().mean(dim=0)
    q = torch.cat([torch.arange(1, n + 1, dtype=torch.float64) / n,
                   torch.arange(1, m + 1, dtype=torch.float64) / m]).unique()
    width = torch.diff(q, prepend=q.new_zeros(1))
    mid = q - width / 2
    ix = (mid * n).floor().long().clamp_(0, n - 1)
    iy = (mid * m).floor().long().clamp_(0, m - 1)
    return (width[:, None] * (xs[ix] - ys[iy]).abs()).sum(dim=0)


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_projections: int = 256,
                       generator: Optional[torch.Generator] = None) -> float:
    """Sliced W_1: the mean over ``n_projections`` random unit directions u of the exact 1-D W_1 between the
    projections <x, u> and <y, u> (sorted samples; unequal sizes through the merged quantile steps)."""
    xs, ys = _points(x, "x"), _points(y, "y")
    _checks.integer("n_projections", n_projections, 1)
    angle = 2 * math.pi * torch.rand(n_projections, generator=generator, dtype=torch.float64)
    u = torch.stack([angle.cos(), angle.sin()])                   # (2, P), uniform on the circle
    return float(_w1_sorted((xs @ u).sort(dim=0).values, (ys @ u).sort(dim=0).values).mean())


def _kernel_sum(a: torch.Tensor, b: torch.Tensor, inv2s2: torch.Tensor) -> float:
    """sum_{i, j} k(a_i, b_j), in row chunks of at most ~4M kernel values (32 MB), whatever the set sizes."""
    total = 0.0
    chunk = max(1, 4_000_000 // (b.shape[0] * inv2s2.numel()))
    for i in range(0, a.shape[0], chunk):
        d2 = torch.cdist(a[i:i + chunk], b).square_()
        total += float(torch.exp(-d2[..., None] * inv2s2).sum())
    return total


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS) -> float:
    """Unbiased MMD^2 (Gretton et al. 2012) with the kernel k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2)) over
    ``bandwidths`` s (default 0.05, 0.2, 1, 4: from the toy modes' std to the layout's scale):

        MMD^2 = sum_{i != j} k(x_i, x_j) / (n (n - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
                - 2 sum_{i, j} k(x_i, y_j) / (n m)

    Zero in expectation when x and y come from the same distribution, so small negative values occur.
    """
    xs, ys = _points(x, "x"), _points(y, "y")
    if xs.shape[0] < 2 or ys.shape[0] < 2:
        raise ValueError(f"x, y: expected at least 2 points each, got {xs.shape[0]} and {ys.shape[0]}")
    bw = torch.as_tensor(bandwidths, dtype=torch.float64).reshape(-1)
    if bw.numel() == 0 or not bool((bw > 0).all()):
        raise ValueError(f"bandwidths: expected one or more positive numbers, got {bandwidths!r}")
    inv2s2 = 1.0 / (2 * bw * bw)
    k = bw.numel()                                                  # k(a, a) = number of bandwidths
    n, m = xs.shape[0], ys.shape[0]
    kxx = (_kernel_sum(xs, xs, inv2s2) - k * n) / (n * (n - 1))
    kyy = (_kernel_sum(ys, ys, inv2s2) - k * m) / (m * (m - 1))
    kxy = _kernel_sum(xs, ys, inv2s2) / (n * m)
    return kxx + kyy - 2 * kxy


def toy2d_metrics(samples: torch.Tensor, name: str, n_ref: int = 4000, n_projections: int = 256,
                  n_mmd: int = 2000, generator: Optional[torch.Generator] = None) -> dict:
    """All 2-D metrics of ``samples`` (n, 2) against ``n_ref`` fresh samples of the data set ``name``.

    Keys: ``sliced_wasserstein``, ``mmd2`` (see :func:`mmd`; on the first ``n_mmd`` points of each set, as its
    cost grows with n^2), and for the mixtures also ``high_quality``, ``modes_covered`` and ``num_modes``. The
    reference sample and the projections are drawn from ``generator``.
    """
    if name not in NAMES:
        raise ValueError(f"name: expected one of {NAMES}, got {name!r}")
    for arg, value in (("n_ref", n_ref), ("n_mmd", n_mmd)):
        _checks.integer(arg, value, 2)
    x = _points(samples, "samples")
    ref = toy2d(name, n_ref, generator=generator).double()
    out = {}
    if name in TOY2D:
        out.update(TOY2D[name].mode_stats(x))
    out["sliced_wasserstein"] = sliced_wasserstein(x, ref, n_projections, generator)
    out["mmd2"] = mmd(x[:n_mmd], ref[:n_mmd])
    return out
