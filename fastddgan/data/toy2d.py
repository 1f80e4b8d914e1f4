"""2-D mixtures with known densities, using the parameters of the mode-collapse literature.

    ring8      8 Gaussians at angles k*pi/4 on a circle of radius 2, std 0.02
    grid25     25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05
    swissroll  a noisy Swiss roll (no discrete modes; scaled to about [-2, 2]^2)

``toy2d(name, n, generator=None)`` draws an (n, 2) float32 tensor; ``TOY2D[name]`` describes the mixture
(centres and std) for exact quality metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from .. import _checks


@dataclass(frozen=True)
class Mixture2D:
    """An equal-weight isotropic Gaussian mixture in 2-D (``centers`` (K, 2), one ``std``)."""

    name: str
    centers: torch.Tensor
    std: float

    @property
    def num_modes(self) -> int:
        return self.centers.shape[0]

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        k = torch.randint(0, self.num_modes, (n,), generator=generator)
        return self.centers[k] + self.std * torch.randn(n, 2, generator=generator)

    def nearest_mode(self, x: torch.Tensor):
        """(index of the nearest centre, distance to it in units of std) for each row of x."""
        dist = torch.cdist(x.float(), self.centers.to(x.device))
        d, k = dist.min(dim=1)
        return k, d / self.std

    def mode_stats(self, x: torch.Tensor, min_share: Optional[float] = None) -> dict:
        """Exact quality of samples ``x`` (n, 2) against this mixture.

        high_quality: share of samples within 3 std of some centre; modes_covered: number of modes holding at
        least ``min_share`` of the samples within 3 std (default: a quarter of a fair share, 1 / (4 K)). Two
        measures of the modes' shape, on the samples within 3 std, against what the data's own would give (both
        guard against what ``high_quality`` rewards: the data itself scores 98.9%, modes of 0.7x its width 99.99%):
        spread, the RMS distance of the samples from their own mode's mean over the data's (1 for the data, 0.7
        for modes of 0.7x its width); offset, the RMS distance of the modes' means from their centres in units of
        std (weighted by the samples; about 0 for the data). For a 2-D Gaussian cut at radius 3 std,
        E[d^2 | d <= 3] = (2 - 11 e^-4.5) / (1 - e^-4.5) std^2 (d^2 is chi-square with 2 degrees of freedom).
        Both NaN when no sample is within 3 std.
        """
        k, d = self.nearest_mode(x)
        good = d <= 3.0
        counts = torch.bincount(k[good], minlength=self.num_modes)
        share = 0.25 / self.num_modes if min_share is None else min_share
        return {"high_quality": float(good.float().mean()),
                "modes_covered": int((counts >= share * x.shape[0]).sum()),
                "num_modes": self.num_modes, **self._shape(x[good].double(), k[good], counts)}

    def _shape(self, x: torch.Tensor, k: torch.Tensor, counts: torch.Tensor) -> dict:
        """spread and offset (see mode_stats) of the samples ``x`` (within 3 std of centre ``k``)."""
        if x.shape[0] == 0:
            return {"spread": float("nan"), "offset": float("nan")}
        means = torch.zeros(self.num_modes, 2, dtype=x.dtype).index_add_(0, k, x)
        means = means / counts.clamp(min=1).unsqueeze(1).to(x.dtype)
        within = (x - means[k]).pow(2).sum(1).mean()  # about own mode's mean
        bias = (means[k] - self.centers.to(x.dtype)[k]).pow(2).sum(1).mean()  # per sample, so mode-weighted
        return {"spread": math.sqrt(float(within) / (TRUNCATED_MEAN_SQUARE * self.std**2)),
                "offset": math.sqrt(float(bias)) / self.std}


# E[d^2 | d <= 3] of a 2-D standard Gaussian: d^2 ~ chi-square(2), whose density is e^(-u/2) / 2.
TRUNCATED_MEAN_SQUARE = (2.0 - 11.0 * math.exp(-4.5)) / (1.0 - math.exp(-4.5))


def _ring8() -> Mixture2D:
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    return Mixture2D("ring8", (2.0 * torch.stack([angles.cos(), angles.sin()], 1)).float(), 0.02)


def _grid25() -> Mixture2D:
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return Mixture2D("grid25", torch.cartesian_prod(axis, axis), 0.05)


TOY2D = {"ring8": _ring8(), "grid25": _grid25()}
NAMES = ("ring8", "grid25", "swissroll")


def _swissroll(n: int, generator: Optional[torch.Generator]) -> torch.Tensor:
    u = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator))
    x = torch.stack([u * u.cos(), u * u.sin()], 1) / 7.5
    return x + 0.05 * torch.randn(n, 2, generator=generator)


def toy2d(name: str, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``n`` samples of the 2-D data set ``name`` as an (n, 2) float32 tensor."""
    if name not in NAMES:
        raise ValueError(f"name: expected one of {NAMES}, got {name!r}")
    _checks.integer("n", n, 1)
    if name == "swissroll":
        return _swissroll(n, generator)
    return TOY2D[name].sample(n, generator)
