"""Pure-PyTorch reference implementations: the ground truth every fused backend is tested against.

They read the same (rows, T) coefficient tables as the kernels (``Schedule.kernel_table``), gather the row values
at each sample's timestep and broadcast them over the sample's remaining dimensions.
"""

from __future__ import annotations

from typing import Optional

import torch


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
