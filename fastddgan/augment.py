"""Differentiable augmentation of what the discriminator sees (DiffAugment; Zhao, Liu, Lin, Zhu & Han 2020).

With few training images a discriminator memorises them: its loss on held-out real data rises while its training
loss falls, and the generator learns nothing from it. DiffAugment draws a random transform T for every sample and
shows D only T(x), for real *and* generated samples alike and in D's *and* G's step; T is differentiable (a
translation with zero padding is a permutation plus zeros, cutout a mask), so G's gradient flows through it, and
since the same distribution of T acts on both sides, matching the augmented distributions matches the data.

Measured here (``benchmarks/results/sweep-mnist5k/README.md``, session 11): on the 5,000 MNIST digits at the CPU
preset's 6,000 steps it made FID-dom worse (translation 7.0, translation + cutout 16.2, none 4.7), so it is off by
default; it is meant for long runs on few images, where the discriminator over-fits.

A DDGAN discriminator judges a pair (x_{t-1}, x_t) on the same pixel grid: both members get the *same* transform
(one draw per sample), which keeps the pair's pixel-wise relation x_t ~ q(x_t | x_{t-1}) intact.

Policies (ratios of the image side, the paper's defaults):

* ``translation``: shift by integers dy, dx uniform in [-round(H/8), round(H/8)] and [-round(W/8), round(W/8)]
  (28x28: up to 4 px), zeros shifted in;
* ``cutout``: zero a square of side round(H/2) whose centre is uniform over the image (clipped at the borders).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

POLICIES = ("translation", "cutout")


def parse_policy(policy) -> Tuple[str, ...]:
    """``"translation,cutout"`` -> ``("translation", "cutout")``; ``""`` / ``None`` -> ``()`` (off)."""
    if policy is None:
        return ()
    if not isinstance(policy, str):
        raise TypeError(f"diffaug: expected a comma-separated string of {POLICIES}, got {type(policy).__name__}")
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    bad = [p for p in names if p not in POLICIES]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"diffaug: expected distinct names from {POLICIES} separated by commas, got {policy!r}")
    return names


def _side(size: int, ratio: float) -> int:
    return int(size * ratio + 0.5)


def translate(tensors: Sequence[torch.Tensor], dy: torch.Tensor, dx: torch.Tensor, sy: int, sx: int):
    """out[b, :, i, j] = x[b, :, i - dy[b], j - dx[b]] (0 outside the image) for every x of ``tensors``;
    |dy| <= sy, |dx| <= sx."""
    b, _, h, w = tensors[0].shape
    dev = tensors[0].device
    rows = (torch.arange(h, device=dev) + sy - dy[:, None])[:, :, None]  # (B, H, 1) into the padded image
    cols = (torch.arange(w, device=dev) + sx - dx[:, None])[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=dev)[:, None, None]
    # advanced indices split by the channel slice put their (B, H, W) first: (B, H, W, C) -> (B, C, H, W)
    return [F.pad(x, (sx, sx, sy, sy))[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous() for x in tensors]


def cutout_mask(shape, cy: torch.Tensor, cx: torch.Tensor, side: int, dtype, device) -> torch.Tensor:
    """(B, 1, H, W): 0 on the square of side ``side`` starting at (cy - side // 2, cx - side // 2), 1 elsewhere."""
    b, _, h, w = shape
    top, left = (cy - side // 2)[:, None, None], (cx - side // 2)[:, None, None]
    i = torch.arange(h, device=device)[None, :, None]
    j = torch.arange(w, device=device)[None, None, :]
    inside = (i >= top) & (i < top + side) & (j >= left) & (j < left + side)
    return (~inside).to(dtype)[:, None]


class PairAugment:
    """``augment((x_prev, x_t), generator)``: the same random transform of each (B, C, H, W) tensor, per sample.

    Args:
        policy: names of :data:`POLICIES`, applied in the order given (a string "a,b" or a sequence).
        translation_ratio, cutout_ratio: the shift bound and the cutout side as fractions of the image side.
    """

    def __init__(self, policy, translation_ratio: float = 0.125, cutout_ratio: float = 0.5):
        self.policy = parse_policy(policy if isinstance(policy, str) or policy is None else ",".join(policy))
        if not self.policy:
            raise ValueError(f"policy: expected at least one of {POLICIES}, got {policy!r}")
        for name, r in (("translation_ratio", translation_ratio), ("cutout_ratio", cutout_ratio)):
            if not 0.0 < float(r) < 1.0:
                raise ValueError(f"{name}: expected a fraction of the image side in (0, 1), got {r!r}")
        self.translation_ratio, self.cutout_ratio = float(translation_ratio), float(cutout_ratio)

    def __call__(self, tensors: Sequence[torch.Tensor], generator: Optional[torch.Generator] = None):
        shape = tensors[0].shape
        if len(shape) != 4 or any(x.shape != shape for x in tensors):
            raise ValueError(f"tensors: expected images of one shape (B, C, H, W), got "
                             f"{[tuple(x.shape) for x in tensors]}")
        b, _, h, w = shape
        dev = tensors[0].device
        out = list(tensors)
        for name in self.policy:
            if name == "translation":
                sy, sx = _side(h, self.translation_ratio), _side(w, self.translation_ratio)
                dy = torch.randint(-sy, sy + 1, (b,), device=dev, generator=generator)
                dx = torch.randint(-sx, sx + 1, (b,), device=dev, generator=generator)
                out = translate(out, dy, dx, sy, sx)
            else:
                side = _side(min(h, w), self.cutout_ratio)
                cy = torch.randint(0, h, (b,), device=dev, generator=generator)
                cx = torch.randint(0, w, (b,), device=dev, generator=generator)
                mask = cutout_mask(shape, cy, cx, side, out[0].dtype, dev)
                out = [x * mask for x in out]
        return out

    def __repr__(self):
        return f"PairAugment({','.join(self.policy)!r})"


__all__ = ["POLICIES", "PairAugment", "cutout_mask", "parse_policy", "translate"]
