"""Pure-PyTorch reference implementations of every op: the ground truth every fused backend is tested against, and
the kernels of the ``torch`` backend.

The diffusion ops read the same (rows, T) coefficient tables as the kernels (``Schedule.kernel_table``), gather the
row values at each sample's timestep and broadcast them over the sample's remaining dimensions.

The GAN loss: per-logit terms of the five objectives, with the codes shared by the kernels
(``csrc/common/gan_losses.h``, ``kernels/losses.py``):

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

Everything is computed in the compute dtype (:func:`compute_dtype`).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

KINDS = {"js": 0, "hellinger": 1, "rkl": 2, "tv": 3, "wasserstein": 4}
DISCRIMINATOR, GENERATOR_NON_SATURATING, GENERATOR_SATURATING = 0, 1, 2
_EXP_KINDS = (KINDS["hellinger"], KINDS["rkl"])


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype every op computes in (its coefficient tables, the loss and its gradients): float64 for float64
    data, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def per_sample(row: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """row[t] shaped (B, 1, 1, ...) to broadcast against ``like`` of shape (B, ...)."""
    return row[t].view((-1,) + (1,) * (like.dim() - 1))


def affine_noise(a: torch.Tensor, b: Optional[torch.Tensor], t: torch.Tensor, table: torch.Tensor,
                 noise: Optional[torch.Tensor]) -> torch.Tensor:
    """out = table[0, t] a + table[1, t] b + table[2, t] noise (terms with a missing tensor dropped).

    Computed in the table's dtype and returned in ``a``'s dtype.
    """
    acc = table.dtype
    out = per_sample(table[0], t, a) * a.to(acc)
    if b is not None:
        out = out + per_sample(table[1], t, a) * b.to(acc)
    if noise is not None:
        out = out + per_sample(table[2], t, a) * noise.to(acc)
    return out.to(a.dtype)


def ddpm_step(eps: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, table: torch.Tensor,
              noise: Optional[torch.Tensor], clip_x0: bool) -> torch.Tensor:
    """x0 = table[0, t] x_t - table[1, t] eps, clipped to [-1, 1] if asked, then
    out = table[2, t] x0 + table[3, t] x_t + table[4, t] noise."""
    acc = table.dtype
    xt = x_t.to(acc)
    x0 = per_sample(table[0], t, xt) * xt - per_sample(table[1], t, xt) * eps.to(acc)
    if clip_x0:
        x0 = x0.clamp(-1.0, 1.0)
    out = per_sample(table[2], t, xt) * x0 + per_sample(table[3], t, xt) * xt
    if noise is not None:
        out = out + per_sample(table[4], t, xt) * noise.to(acc)
    return out.to(x_t.dtype)


def q_sample_pairs(x0: torch.Tensor, t: torch.Tensor, table: torch.Tensor, noise_prev: torch.Tensor,
                   noise_step: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """A true pair from the (4, T) table: x_prev = table[0, t] x0 + table[1, t] noise_prev, then
    x_t = table[2, t] x_prev + table[3, t] noise_step, from x_prev as returned (in ``x0``'s dtype): the two
    :func:`affine_noise` calls of the q_prev and q_step tables."""
    zeros = torch.zeros_like(table[0])
    x_prev = affine_noise(x0, None, t, torch.stack((table[0], zeros, table[1])), noise_prev)
    return x_prev, affine_noise(x_prev, None, t, torch.stack((table[2], zeros, table[3])), noise_step)


# ------------------------------------------------------------------------------------------------- GAN loss


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
    """The op's contract: (mean loss, d loss / d real, d loss / d fake) in the compute dtype; ``real`` only for the
    discriminator part (else the real gradient is an empty tensor)."""
    acc = compute_dtype(fake.dtype)
    value, grad = fake_term(kind, part, fake.to(acc), clamp)
    loss, grad_fake = value.mean(), grad / fake.numel()
    if real is None:
        return loss, fake.new_empty((0,), dtype=acc), grad_fake
    value, grad = real_term(kind, real.to(acc), clamp)
    return loss + value.mean(), grad / real.numel(), grad_fake


def gan_loss_value(real: Optional[Tensor], fake: Tensor, kind: int, part: int, clamp: float) -> Tensor:
    """The same mean loss through PyTorch autograd (differentiable to any order)."""
    acc = compute_dtype(fake.dtype)
    out = fake_term(kind, part, fake.to(acc), clamp)[0].mean()
    if real is not None:
        out = out + real_term(kind, real.to(acc), clamp)[0].mean()
    return out
