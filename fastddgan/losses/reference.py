"""The per-logit terms of the five objectives in plain PyTorch: the ground truth of the fused ``gan_loss`` kernels.

Codes shared with the kernels (``csrc/common/gan_losses.h``, ``kernels/losses.py``):

    kind  js 0, hellinger 1, rkl 2, tv 3, wasserstein 4
    part  discriminator 0, generator non-saturating 1, generator saturating 2

``loss = mean(real_term(real)) + mean(fake_term(fake))`` (the real term only in the discriminator part). With
``s = clamp * tanh(V / clamp)`` (``s = V`` when ``clamp <= 0``) for the exp-based kinds:

    kind         discriminator real | fake    generator non-saturating   generator saturating
    js           softplus(-V) | softplus(V)   softplus(-V)               -softplus(V)
    hellinger    exp(-s)      | exp(s)        exp(-s)                    -exp(s)
    rkl          exp(-s)      | s             exp(-s)                    -s
    tv           -tanh(V)/2   | tanh(V)/2     -tanh(V)/2                 -tanh(V)/2
    wasserstein  -V           | V             -V                         -V

and the variational divergence bound is ``DIVERGENCE_CONSTANT[kind] - (discriminator loss)``.
Everything is computed in float32 (float64 for float64 logits).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

KINDS = {"js": 0, "hellinger": 1, "rkl": 2, "tv": 3, "wasserstein": 4}
DISCRIMINATOR, GENERATOR_NON_SATURATING, GENERATOR_SATURATING = 0, 1, 2
# divergence bound E_data[g_f(V)] - E_model[f*(g_f(V))] = constant - discriminator loss
DIVERGENCE_CONSTANT = (0.0, 2.0, 1.0, 0.0, 0.0)

_EXP_KINDS = (KINDS["hellinger"], KINDS["rkl"])


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def sech2(v: Tensor) -> Tensor:
    """1 - tanh(v)^2 as 4 e / (1 + e)^2, e = exp(-2|v|): no cancellation where tanh(v) rounds to +-1."""
    e = torch.exp(-2 * v.abs())
    return 4 * e / (1 + e) ** 2


def soft_clamp(v: Tensor, clamp: float) -> Tuple[Tensor, Tensor]:
    """(clamp * tanh(v / clamp), its derivative); the identity when ``clamp <= 0``."""
    if clamp <= 0:
        return v, torch.ones_like(v)
    return clamp * torch.tanh(v / clamp), sech2(v / clamp)


def real_term(kind: int, v: Tensor, clamp: float) -> Tuple[Tensor, Tensor]:
    """(term, d term / dV) of real logits in the discriminator loss."""
    if kind == 0:
        return F.softplus(-v), -torch.sigmoid(-v)
    if kind in _EXP_KINDS:
        s, ds = soft_clamp(v, clamp)
        e = torch.exp(-s)
        return e, -e * ds
    if kind == 3:
        return -0.5 * torch.tanh(v), -0.5 * sech2(v)
    return -v, torch.full_like(v, -1.0)


def fake_term(kind: int, part: int, v: Tensor, clamp: float) -> Tuple[Tensor, Tensor]:
    """(term, d term / dV) of fake logits in ``part``."""
    if kind == 0:
        if part == DISCRIMINATOR:
            return F.softplus(v), torch.sigmoid(v)
        if part == GENERATOR_NON_SATURATING:
            return F.softplus(-v), -torch.sigmoid(-v)
        return -F.softplus(v), -torch.sigmoid(v)
    if kind in _EXP_KINDS:
        s, ds = soft_clamp(v, clamp)
        if part == GENERATOR_NON_SATURATING:
            e = torch.exp(-s)
            return e, -e * ds
        sign = 1.0 if part == DISCRIMINATOR else -1.0
        if kind == 2:
            return sign * s, sign * ds
        e = torch.exp(s)
        return sign * e, sign * e * ds
    if kind == 3:
        half = 0.5 if part == DISCRIMINATOR else -0.5
        return half * torch.tanh(v), half * sech2(v)
    if part == DISCRIMINATOR:
        return v * 1.0, torch.ones_like(v)
    return -v, torch.full_like(v, -1.0)


def gan_loss(real: Optional[Tensor], fake: Tensor, kind: int, part: int,
             clamp: float) -> Tuple[Tensor, Tensor, Tensor]:
    """The fused op's contract: (mean loss, d loss / d real, d loss / d fake) in the compute dtype; ``real`` only
    for the discriminator part (else the real gradient is an empty tensor)."""
    acc = compute_dtype(fake.dtype)
    value, grad = fake_term(kind, part, fake.to(acc), clamp)
    loss, grad_fake = value.mean(), grad / fake.numel()
    if real is None:
        return loss, fake.new_empty((0,), dtype=acc), grad_fake
    value, grad = real_term(kind, real.to(acc), clamp)
    return loss + value.mean(), grad / real.numel(), grad_fake


def loss(real: Optional[Tensor], fake: Tensor, kind: int, part: int, clamp: float) -> Tensor:
    """The same mean loss through PyTorch autograd (differentiable to any order)."""
    acc = compute_dtype(fake.dtype)
    out = fake_term(kind, part, fake.to(acc), clamp)[0].mean()
    if real is not None:
        out = out + real_term(kind, real.to(acc), clamp)[0].mean()
    return out
