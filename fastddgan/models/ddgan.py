"""DDGAN (Xiao et al. 2022) generator and discriminator for images, built from the U-Net blocks.

One reverse step of DDGAN is a conditional GAN: G(x_t, z, t) predicts x0 and x_{t-1} ~ q(x_{t-1} | x_t, x0) is
drawn from the Gaussian posterior; D(x_{t-1}, x_t, t) tells true pairs from generated ones.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .. import _checks
from .embeddings import ConditionEmbedding
from .layers import Norm
from .unet import Encoder, UNet, level_resolutions

__all__ = ["DDGANGenerator", "DDGANDiscriminator", "minibatch_std", "apply_spectral_norm"]

HEADS = ("mean", "flatten")  # DDGANDiscriminator's readout of the encoder's last feature map


class DDGANGenerator(UNet):
    """G(x_t, z, t[, y]) -> x0 in [-1, 1]: a :class:`UNet` with latent input ``nz`` (mapping MLP + adaptive
    GroupNorm in every residual block) and a tanh output.

    x_t (B, in_channels, S, S), z (B, nz) ~ N(0, I), t (B,) int64, y (B,) labels or None -> (B, in_channels, S, S).
    ``unet_kwargs`` are those of :class:`UNet` (ch, ch_mult, num_res_blocks, attn_resolutions, dropout,
    image_size, num_classes, z_emb_dim, n_mapping_layers, ...).
    """

    def __init__(self, in_channels: int = 1, nz: int = 100, **unet_kwargs):
        for fixed in ("out_channels", "out_activation"):
            if fixed in unet_kwargs:
                raise ValueError(f"{fixed}: fixed by DDGANGenerator (x0 has in_channels channels, tanh output)")
        super().__init__(in_channels=in_channels, nz=_checks.positive_int("nz", nz), out_activation="tanh",
                         **unet_kwargs)

    def forward(self, x_t: torch.Tensor, z: torch.Tensor, t: torch.Tensor,  # type: ignore[override]
                y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._run(x_t, t, y, z, "x_t")


def minibatch_std(h: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Minibatch-stddev feature (Karras et al. 2018, as in DDGAN's discriminator), per group of samples.

    The batch B is split into B / G groups of G consecutive samples, G the largest divisor of B that is at most
    ``group_size``. For each group, the standard deviation over its G members of every feature (every channel and
    position), averaged to one scalar s_g, is appended to each member as one more channel: (B, C, ...) ->
    (B, C + 1, ...). Samples of one group see each other; groups do not (opt-in: it couples the samples of a batch).
    """
    _checks.positive_int("group_size", group_size)
    batch = h.shape[0]
    g = max(d for d in range(1, min(group_size, batch) + 1) if batch % d == 0)
    grouped = h.float().reshape(batch // g, g, -1)
    s = grouped.var(dim=1, unbiased=False).add(1e-8).sqrt().mean(dim=1)            # (B / G,)
    s = s.repeat_interleave(g).to(h.dtype).reshape(batch, 1, *([1] * (h.dim() - 2)))
    return torch.cat([h, s.expand(batch, 1, *h.shape[2:])], dim=1)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap every Conv2d and Linear of ``module`` (in place) with spectral normalisation W / sigma_max(W)."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            _spectral_norm(m)
    return module


class DDGANDiscriminator(nn.Module):
    """D(x_{t-1}, x_t, t[, y]) -> one logit per sample (B,).

    The contracting half of the U-Net (:class:`~fastddgan.models.unet.Encoder`, time + class embedding added as a
    per-channel bias in every residual block) on the channel concatenation [x_{t-1}, x_t] (B, 2C, S, S), then GN,
    SiLU, a global mean over positions (B, C') and a linear head. (DDGAN sums over positions; the mean keeps the
    initial logits O(1) whatever the resolution, which the exponential f-GAN losses need.) ``head_norm=False`` drops
    that last GN: a GN with few channels per group followed by the mean over positions leaves the pooled features
    little of the input (with one channel per group their pre-SiLU mean is the GN bias exactly); an ablation only:
    without it js T = 10 on digits went flat sooner, not later (sweep-mnist5k/README.md, session 34).
    ``head="flatten"`` replaces the mean over positions by one linear map of the whole normalised feature map (B,
    C'S'^2), as in DCGAN / StyleGAN discriminators: each position gets its own weights, so the per-channel spatial
    mean that GN fixes no longer bounds what the head sees (initial logits stay O(1): the linear layer's fan-in
    init); an ablation: js T = 8 on digits went flat with it all the same (session 36). GroupNorm only (no
    BatchNorm), so the logit of sample i depends on sample i alone, unless ``minibatch_std=True``: then the
    encoder's output gets the minibatch-stddev channel of :func:`minibatch_std` (groups of 4) and a 3x3 conv back to
    C' channels before the norm, as DDGAN's discriminator has it. ``spectral_norm=True`` wraps every conv / linear
    layer with spectral normalisation. ``projection=True`` (class-conditional only) adds the projection term of
    Miyato & Koyama (2018) to the logit: <P[y], h>, h the pooled features (B, C') and P a learned table of one
    C'-vector per class (+ the null class), initialised to zero (the same logits as without it at the start), so
    that the label meets the image features at the output and not only as the residual blocks' bias.
    ``time_projection=True`` adds the same kind of term for the step: <P(e_t), h>, P a linear map of the time
    embedding e_t (zero at the start), so that each step t can have its own readout of the shared features (an
    ablation for the discriminator that goes flat at T >= 8 on digits: it did not keep js T = 8 alive, a 32-channel
    discriminator did; sweep-mnist5k/README.md, session 36).
    """

    def __init__(self, in_channels: int = 1, ch: int = 64, ch_mult: Sequence[int] = (1, 2, 2),
                 num_res_blocks: int = 1, attn_resolutions: Sequence[int] = (), image_size: int = 32,
                 num_classes: Optional[int] = None, dropout: float = 0.0, minibatch_std: bool = False,
                 spectral_norm: bool = False, projection: bool = False, head_norm: bool = True,
                 head: str = "mean", time_projection: bool = False):
        super().__init__()
        _checks.positive_int("in_channels", in_channels)
        if head not in HEADS:
            raise ValueError(f"head: expected one of {HEADS}, got {head!r}")
        self.head_kind = head
        self.in_channels = in_channels
        self.image_size = image_size
        self.num_classes = _checks.optional_classes(num_classes)
        self.minibatch_std = bool(minibatch_std)
        self.cond = ConditionEmbedding(ch, 4 * ch, num_classes)
        self.encoder = Encoder(2 * in_channels, ch, tuple(ch_mult), num_res_blocks, tuple(attn_resolutions),
                               dropout, image_size, 4 * ch)
        c = self.encoder.out_channels
        self.norm_out = Norm(c) if head_norm else nn.Identity()
        self.std_conv = nn.Conv2d(c + 1, c, 3, padding=1) if self.minibatch_std else None
        positions = level_resolutions(image_size, ch_mult)[-1] ** 2 if head == "flatten" else 1
        self.head = nn.Linear(c * positions, 1)
        if projection and self.num_classes is None:
            raise ValueError("projection: the projection term needs class labels (num_classes); this discriminator "
                             "is unconditional")
        self.projection = nn.Embedding(self.num_classes + 1, c) if projection else None
        if self.projection is not None:
            nn.init.zeros_(self.projection.weight)
        self.time_projection = nn.Linear(4 * ch, c) if time_projection else None
        if self.time_projection is not None:
            nn.init.zeros_(self.time_projection.weight)
            nn.init.zeros_(self.time_projection.bias)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x_prev: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                y: Optional[torch.Tensor] = None) -> torch.Tensor:
        _checks.shaped("x_t", x_t, (None, self.in_channels, self.image_size, self.image_size))
        _checks.shaped("x_prev", x_prev, x_t.shape)
        _checks.same_batch("x_prev", x_prev, x_t, "x_t")
        batch = x_t.shape[0]
        t, label = self.cond.check(t, y, batch, x_t.device)  # checked once: embedding and projection
        temb = F.silu(self.cond.embed(t, label, x_t.dtype))
        h, _ = self.encoder(torch.cat([x_prev, x_t], dim=1), temb, keep_skips=False)
        if self.std_conv is not None:
            h = self.std_conv(minibatch_std(h))
        features = F.silu(self.norm_out(h))
        h = features.mean(dim=(2, 3))
        logit = self.head(features.flatten(1) if self.head_kind == "flatten" else h).squeeze(1)
        if self.projection is not None:  # y=None: the null class's row
            logit = logit + (self.projection(label).to(h.dtype) * h).sum(dim=1)
        if self.time_projection is not None:
            logit = logit + (self.time_projection(temb) * h).sum(dim=1)
        return logit
