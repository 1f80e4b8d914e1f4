"""Conditioning embeddings shared by every model: timestep (sinusoidal + MLP), class label, latent z.

Sinusoidal embedding (Vaswani et al. 2017, used for timesteps by Ho et al. 2020), for dimension d = 2h:

    emb(t)_k = cos(t w_k),  emb(t)_{h+k} = sin(t w_k),  w_k = max_period^(-k/h),  k = 0..h-1

so the frequencies run geometrically from 1 down to ~1/max_period.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks

__all__ = ["SinusoidalEmbedding", "ConditionEmbedding", "MappingNetwork"]


class SinusoidalEmbedding(nn.Module):
    """t (B,) int or float -> (B, dim) float32 sinusoidal features (the frequencies are a cached buffer)."""

    def __init__(self, dim: int, max_period: float = 10000.0):
        super().__init__()
        self.dim = _checks.positive_int("dim", dim, 2)
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t.to(torch.float32)[:, None] * self.freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
        return F.pad(emb, (0, 1)) if self.dim % 2 else emb


class ConditionEmbedding(nn.Module):
    """c(t, y) = MLP(sinusoid(t)) + E[y]: (B,) timesteps and labels -> (B, out_dim).

    MLP: Linear(base_dim, out_dim) -> SiLU -> Linear(out_dim, out_dim). With ``num_classes`` a learned table
    ``E`` of num_classes + 1 rows is added; row ``num_classes`` is the null class (classifier-free guidance), used
    for ``y=None``. Validates ``t`` and ``y`` for the model that owns it.
    """

    def __init__(self, base_dim: int, out_dim: int, num_classes: Optional[int] = None, max_period: float = 10000.0):
        super().__init__()
        self.num_classes = _checks.optional_classes(num_classes)
        self.sinusoid = SinusoidalEmbedding(base_dim, max_period)
        self.mlp = nn.Sequential(nn.Linear(base_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))
        self.label = None if num_classes is None else nn.Embedding(num_classes + 1, out_dim)

    def forward(self, t, y, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        return self.embed(*self.check(t, y, batch, device), dtype)

    def check(self, t, y, batch: int, device: torch.device):
        """(t, labels) checked for the model that owns this embedding; labels (B,) with the null class in place
        of None (None for an unconditional model)."""
        return (_checks.timesteps(t, batch, device, continuous=True, of="the input"),
                _checks.labels(y, batch, self.num_classes, device))

    def embed(self, t: torch.Tensor, label: Optional[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
        """:meth:`forward` on the output of :meth:`check`, for a caller that uses the labels again."""
        emb = self.mlp(self.sinusoid(t).to(dtype))
        if self.label is not None:
            emb = emb + self.label(label).to(emb.dtype)
        return emb


class MappingNetwork(nn.Module):
    """The latent MLP of a GAN generator (StyleGAN-style): z (B, nz) -> w (B, width), ``num_layers`` x
    (Linear -> SiLU). No normalisation across the batch, so samples stay independent."""

    def __init__(self, nz: int, width: int = 256, num_layers: int = 4):
        super().__init__()
        _checks.positive_int("nz", nz)
        _checks.positive_int("z_emb_dim", width)
        _checks.positive_int("n_mapping_layers", num_layers)
        layers = []
        for i in range(num_layers):
            layers += [nn.Linear(nz if i == 0 else width, width), nn.SiLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
