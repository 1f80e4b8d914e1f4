"""Classifier-free guidance helpers shared by DDPM and DDGAN (Ho & Salimans 2022).

Training drops the label with probability ``p_uncond`` (replaced by the reserved null class ``num_classes``);
sampling combines the conditional and unconditional predictions as ``(1 + w) cond - w uncond``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from . import _checks


def check_labels(y: Optional[torch.Tensor], num_classes: Optional[int], batch: int, device,
                 name: str = "y") -> Optional[torch.Tensor]:
    """Validated class labels (int64 on ``device``) or None for an unconditional call; errors name the argument
    ``name`` (``y`` in training, ``class_labels`` when sampling).

    The range check reads the values: :func:`fastddgan._checks.label_values`, where
    :func:`fastddgan._checks.check_values` says (CPU labels, checked before they are moved; labels already on a GPU
    only with FASTDDGAN_DEBUG=1, as it would cost a sync every step).
    """
    if y is None:
        return None
    if num_classes is None:
        raise ValueError(f"{name}: this model is unconditional (num_classes=None); pass {name}=None")
    y = torch.as_tensor(y)
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise TypeError(f"{name}: expected integer class labels, got {y.dtype}")
    if y.dim() == 0:
        y = y.expand(batch)
    if y.shape != (batch,):
        raise ValueError(f"{name}: expected {batch} labels, one per sample, got shape {tuple(y.shape)}")
    _checks.label_values(y, num_classes, name, bound=str(num_classes))
    return y.to(device=device, dtype=torch.long)


def drop_labels(y: Optional[torch.Tensor], num_classes: Optional[int], p_uncond: float,
                generator: Optional[torch.Generator] = None) -> Optional[torch.Tensor]:
    """Replace each label by the null class ``num_classes`` with probability ``p_uncond``."""
    if y is None or p_uncond <= 0:
        return y
    drop = torch.rand(y.shape, device=y.device, generator=generator) < p_uncond
    return torch.where(drop, torch.full_like(y, num_classes), y)


def null_labels(batch: int, num_classes: int, device) -> torch.Tensor:
    return torch.full((batch,), num_classes, dtype=torch.long, device=device)


def check_guidance(guidance: float, num_classes: Optional[int], y: Optional[torch.Tensor],
                   labels_name: str = "y") -> float:
    guidance = float(guidance)
    if not math.isfinite(guidance):
        raise ValueError(f"guidance: expected a finite number, got {guidance}")
    if guidance != 0.0 and num_classes is None:
        raise ValueError(f"guidance: classifier-free guidance needs a class-conditional model, got guidance="
                         f"{guidance} for an unconditional one")
    if guidance != 0.0 and y is None:
        raise ValueError(f"guidance: guided sampling needs class labels ({labels_name}=...)")
    return guidance


def guided(predict, inputs, y: Optional[torch.Tensor], guidance: float, num_classes: Optional[int]):
    """``(1 + w) predict(*inputs, y) - w predict(*inputs, null)`` with the same inputs (x_t, t and, for DDGAN, the
    same z) for both halves, evaluated in one batched call of ``predict``."""
    if guidance == 0.0 or y is None:
        return predict(*inputs, y)
    batch = y.shape[0]
    doubled = [torch.cat([v, v]) for v in inputs]
    both = predict(*doubled, torch.cat([y, null_labels(batch, num_classes, y.device)]))
    cond, uncond = both[:batch], both[batch:]
    return (1.0 + guidance) * cond - guidance * uncond
