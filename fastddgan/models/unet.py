"""The U-Net (Ho et al. 2020 style, written from the paper's description) and its contracting half.

Image sizes: the network runs *natively* at any size divisible by 2^(len(ch_mult) - 1): each level but the last
halves the resolution with a stride-2 conv, e.g. 28 -> 14 -> 7 with ch_mult=(1, 2, 2) for 28x28 data, or
32 -> 16 -> 8 -> 4 with (1, 2, 2, 2) for 32x32. No padding to 32 and cropping.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from .embeddings import ConditionEmbedding, MappingNetwork
from .layers import Downsample, Norm, ResAttnBlock, Upsample

__all__ = ["UNet", "Encoder", "level_resolutions"]


def level_resolutions(image_size: int, ch_mult: Sequence[int], attn_resolutions: Sequence[int] = ()) -> List[int]:
    """The spatial size at each level (image_size / 2^level); ValueError for sizes that do not halve exactly and for
    attention resolutions the network never reaches."""
    _checks.positive_int("image_size", image_size)
    if len(ch_mult) == 0 or not all(_checks.is_int(m) and m >= 1 for m in ch_mult):
        raise ValueError(f"ch_mult: expected a non-empty sequence of positive ints, got {ch_mult!r}")
    factor = 2 ** (len(ch_mult) - 1)
    if image_size % factor:
        raise ValueError(f"image_size: {image_size} is not divisible by 2^(len(ch_mult)-1) = {factor} "
                         f"(ch_mult={tuple(ch_mult)}); use fewer levels, e.g. ch_mult=(1, 2, 2) for 28x28")
    sizes = [image_size // 2 ** i for i in range(len(ch_mult))]
    missing = sorted(set(attn_resolutions) - set(sizes))
    if missing:
        raise ValueError(f"attn_resolutions: {tuple(missing)} never occur; with image_size={image_size} and "
                         f"ch_mult={tuple(ch_mult)} the resolutions are {tuple(sizes)}")
    return sizes


class Encoder(nn.Module):
    """The contracting half of the U-Net: conv_in, then per level ``num_res_blocks`` residual blocks (attention at
    ``attn_resolutions``) and a stride-2 downsample (except at the last level).

    forward(x (B, in_channels, S, S), temb (B, temb_dim), w) -> (h (B, ch*ch_mult[-1], S/2^(L-1), ...), skips)
    where ``skips`` holds every intermediate activation (for the expanding half); ``skip_channels`` their widths.
    """

    def __init__(self, in_channels: int, ch: int, ch_mult: Sequence[int], num_res_blocks: int,
                 attn_resolutions: Sequence[int], dropout: float, image_size: int, temb_dim: int,
                 z_dim: Optional[int] = None, num_heads: int = 1):
        super().__init__()
        _checks.positive_int("in_channels", in_channels)
        _checks.positive_int("ch", ch)
        _checks.positive_int("num_res_blocks", num_res_blocks)
        sizes = level_resolutions(image_size, ch_mult, attn_resolutions)
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.blocks = nn.ModuleList()
        self.skip_channels = [ch]
        c = ch
        for level, (mult, res) in enumerate(zip(ch_mult, sizes)):
            for _ in range(num_res_blocks):
                self.blocks.append(ResAttnBlock(c, ch * mult, temb_dim, dropout, z_dim, res in attn_resolutions,
                                                num_heads))
                c = ch * mult
                self.skip_channels.append(c)
            if level != len(ch_mult) - 1:
                self.blocks.append(Downsample(c))
                self.skip_channels.append(c)
        self.out_channels = c

    def forward(self, x: torch.Tensor, temb: torch.Tensor, w: Optional[torch.Tensor] = None,
                keep_skips: bool = True) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        h = self.conv_in(x)
        skips = [h] if keep_skips else []
        for block in self.blocks:
            h = block(h, temb, w)
            if keep_skips:
                skips.append(h)
        return h, skips


class UNet(nn.Module):
    """eps / x0 / v predictor of DDPM, and (with ``nz``) the core of the DDGAN generator.

    forward(x (B, in_channels, S, S), t (B,) int64 timesteps, y (B,) labels or None, z (B, nz) or None)
        -> (B, out_channels, S, S)

    Conditioning: temb = MLP(sinusoid(t)) + E[y] (width 4*ch), added as a per-channel bias in every residual
    block; E has num_classes + 1 rows, row ``num_classes`` = null class (used for y=None). With ``nz``, the
    latent goes through a ``n_mapping_layers`` MLP of width ``z_emb_dim`` to w, and every residual block uses
    adaptive GroupNorm (1 + gamma(w)) * GN(h) + beta(w). Structure: Encoder -> middle (res, attention, res) ->
    expanding half (num_res_blocks + 1 blocks per level, each on [h, skip] concatenated) -> GN, SiLU, 3x3 conv
    [-> tanh]. 28x28 is handled natively (see the module docstring).
    """

    def __init__(self, in_channels: int = 1, out_channels: Optional[int] = None, ch: int = 64,
                 ch_mult: Sequence[int] = (1, 2, 2), num_res_blocks: int = 2, attn_resolutions: Sequence[int] = (16,),
                 dropout: float = 0.0, image_size: int = 32, num_classes: Optional[int] = None,
                 nz: Optional[int] = None, z_emb_dim: int = 256, n_mapping_layers: int = 4,
                 out_activation: Optional[str] = None, num_heads: int = 1):
        super().__init__()
        if out_activation not in (None, "tanh"):
            raise ValueError(f"out_activation: expected None or 'tanh', got {out_activation!r}")
        ch_mult, attn_resolutions = tuple(ch_mult), tuple(attn_resolutions)
        self.in_channels = in_channels
        self.out_channels = in_channels if out_channels is None else _checks.positive_int("out_channels", out_channels)
        self.image_size = image_size
        self.num_classes = _checks.optional_classes(num_classes)
        self.nz = None if nz is None else _checks.positive_int("nz", nz)
        self.out_activation = out_activation
        temb_dim = 4 * ch
        z_dim = None if nz is None else z_emb_dim
        self.cond = ConditionEmbedding(ch, temb_dim, num_classes)
        self.mapping = None if nz is None else MappingNetwork(nz, z_emb_dim, n_mapping_layers)
        self.encoder = Encoder(in_channels, ch, ch_mult, num_res_blocks, attn_resolutions, dropout, image_size,
                               temb_dim, z_dim, num_heads)
        c = self.encoder.out_channels
        self.mid = nn.ModuleList([ResAttnBlock(c, c, temb_dim, dropout, z_dim, True, num_heads),
                                  ResAttnBlock(c, c, temb_dim, dropout, z_dim, False)])
        self.up = nn.ModuleList()
        skips = list(self.encoder.skip_channels)
        sizes = [image_size // 2 ** i for i in range(len(ch_mult))]
        for level in reversed(range(len(ch_mult))):
            out = ch * ch_mult[level]
            for _ in range(num_res_blocks + 1):
                self.up.append(ResAttnBlock(c + skips.pop(), out, temb_dim, dropout, z_dim,
                                            sizes[level] in attn_resolutions, num_heads))
                c = out
            if level != 0:
                self.up.append(Upsample(c))
        self.norm_out = Norm(c)
        self.conv_out = nn.Conv2d(c, self.out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: Optional[torch.Tensor] = None,
                z: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._run(x, t, y, z, "x")

    def _run(self, x, t, y, z, x_name: str) -> torch.Tensor:
        _checks.shaped(x_name, x, (None, self.in_channels, self.image_size, self.image_size))
        batch = x.shape[0]
        z = _checks.latent(z, batch, self.nz, x.device)
        temb = F.silu(self.cond(t, y, batch, x.device, x.dtype))
        w = None if self.mapping is None else self.mapping(z)
        h, skips = self.encoder(x, temb, w)
        for block in self.mid:
            h = block(h, temb, w)
        for block in self.up:
            if isinstance(block, ResAttnBlock):
                h = torch.cat([h, skips.pop()], dim=1)
            h = block(h, temb, w)
        h = self.conv_out(F.silu(self.norm_out(h)))
        return torch.tanh(h) if self.out_activation == "tanh" else h
