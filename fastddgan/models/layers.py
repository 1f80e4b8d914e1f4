"""U-Net building blocks shared by the denoiser, the DDGAN generator and the DDGAN discriminator.

Every block has the signature ``block(h, temb, w) -> h``: ``temb`` (B, temb_dim) is the already SiLU-activated
time (+ class) embedding, ``w`` (B, z_dim) the mapped latent of a generator (None elsewhere). Residual sums are
scaled by 1/sqrt(2) so activations keep unit scale through deep stacks (as in NCSN++ / DDGAN).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["num_groups", "Norm", "ResBlock", "AttentionBlock", "Downsample", "Upsample"]

_SKIP_SCALE = 1.0 / math.sqrt(2.0)


def num_groups(channels: int, max_groups: int = 32) -> int:
    """The largest divisor of ``channels`` that is <= ``max_groups`` (GroupNorm needs an exact division)."""
    return next(g for g in range(min(max_groups, channels), 0, -1) if channels % g == 0)


class Norm(nn.Module):
    """GroupNorm; with ``z_dim`` the adaptive GroupNorm of a generator:

        AdaGN(h, w) = (1 + gamma(w)) * GN(h) + beta(w),   [gamma, beta] = Linear(w),  GN without affine.
    """

    def __init__(self, channels: int, z_dim: Optional[int] = None):
        super().__init__()
        self.norm = nn.GroupNorm(num_groups(channels), channels, affine=z_dim is None)
        self.style = None if z_dim is None else nn.Linear(z_dim, 2 * channels)

    def forward(self, h: torch.Tensor, w: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.norm(h)
        if self.style is None:
            return h
        gamma, beta = self.style(w)[:, :, None, None].chunk(2, dim=1)
        return torch.addcmul(beta, 1 + gamma, h)


class ResBlock(nn.Module):
    """h = conv3(SiLU(N1(x)));  h = conv3(drop(SiLU(N2(h) + Linear(temb))));  out = (skip(x) + h) / sqrt(2).

    N1, N2: :class:`Norm` (adaptive when ``z_dim``); skip is a 1x1 conv when the channel count changes.
    (B, in_ch, H, W) -> (B, out_ch, H, W). The time embedding is a per-channel bias added *after* N2, not before
    it as in DDPM: GroupNorm subtracts each group's mean, so a bias added before it only survives as its variation
    within a group, and with one channel per group (``channels <= 32``) it would be erased exactly.
    """

    def __init__(self, in_ch: int, out_ch: int, temb_dim: int, dropout: float = 0.0, z_dim: Optional[int] = None):
        super().__init__()
        self.norm1 = Norm(in_ch, z_dim)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.temb = nn.Linear(temb_dim, out_ch)
        self.norm2 = Norm(out_ch, z_dim)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, w: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x, w)))
        h = self.norm2(h, w) + self.temb(temb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(h)))
        return (self.skip(x) + h) * _SKIP_SCALE


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the H*W positions:  out = (x + proj(SDPA(q, k, v))) / sqrt(2),
    [q, k, v] = 1x1conv(GN(x)), ``num_heads`` heads of C / num_heads channels. (B, C, H, W) -> same."""

    def __init__(self, channels: int, num_heads: int = 1):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"num_heads: expected a divisor of the channel count {channels}, got {num_heads}")
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(num_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, temb=None, w=None) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.num_heads, c // self.num_heads, hgt * wid)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (B, heads, HW, d)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(-1, -2).reshape(b, c, hgt, wid)
        return (x + self.proj(out)) * _SKIP_SCALE


class ResAttnBlock(nn.Module):
    """A :class:`ResBlock`, followed by an :class:`AttentionBlock` when ``attn``."""

    def __init__(self, in_ch: int, out_ch: int, temb_dim: int, dropout: float, z_dim: Optional[int], attn: bool,
                 num_heads: int = 1):
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, temb_dim, dropout, z_dim)
        self.attn = AttentionBlock(out_ch, num_heads) if attn else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor, w: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.res(x, temb, w)
        return h if self.attn is None else self.attn(h)


class Downsample(nn.Module):
    """Stride-2 3x3 conv: (B, C, H, W) -> (B, C, H/2, W/2) (H, W even)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, temb=None, w=None) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a 3x3 conv: (B, C, H, W) -> (B, C, 2H, 2W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, temb=None, w=None) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
