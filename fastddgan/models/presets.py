"""Named model configurations and :func:`build`.

A preset is a dict ``{"kind": "image" | "toy", "image_size": S (None for toy), "channels": C (data dim for toy),
"generator": {...}, "discriminator": {...}, "denoiser": {...}}``; the role dicts are the keyword arguments of
DDGANGenerator / DDGANDiscriminator / UNet (image) or ToyGenerator / ToyDiscriminator / ToyDenoiser (toy).
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Optional, Union

from torch import nn

from .ddgan import DDGANDiscriminator, DDGANGenerator
from .toy import ToyDenoiser, ToyDiscriminator, ToyGenerator
from .unet import UNet

__all__ = ["PRESETS", "ROLES", "preset", "build"]

ROLES = ("generator", "discriminator", "denoiser")
_CLASSES = {
    "image": {"generator": DDGANGenerator, "discriminator": DDGANDiscriminator, "denoiser": UNet},
    "toy": {"generator": ToyGenerator, "discriminator": ToyDiscriminator, "denoiser": ToyDenoiser},
}


def _image(size: int, channels: int, g: dict, d: dict, eps: dict) -> dict:
    common = {"in_channels": channels, "image_size": size}
    return {"kind": "image", "image_size": size, "channels": channels,
            "generator": {**common, **g}, "discriminator": {**common, **d}, "denoiser": {**common, **eps}}


# 28x28x1: 28 -> 14 -> 7 natively. Sized so DDGAN (T=4) trains on one GPU well within an hour.
_MNIST = _image(
    28, 1,
    g=dict(nz=100, ch=64, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(14,), z_emb_dim=256,
           n_mapping_layers=4, dropout=0.0),
    d=dict(ch=64, ch_mult=(1, 2, 4), num_res_blocks=1, attn_resolutions=()),
    eps=dict(ch=64, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(14,), dropout=0.1),
)

PRESETS: Dict[str, Dict[str, Any]] = {
    "mnist": _MNIST,
    "mnist5k": copy.deepcopy(_MNIST),
    "fashion-mnist": copy.deepcopy(_MNIST),
    # 32x32x3: the DDGAN CIFAR-10 generator (ch 128, (1, 2, 2, 2), 2 blocks, attention at 16, nz 100, 4-layer
    # mapping of width 256); a moderately sized discriminator; the DDPM CIFAR-10 denoiser.
    "cifar10": _image(
        32, 3,
        g=dict(nz=100, ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,), z_emb_dim=256,
               n_mapping_layers=4, dropout=0.0),
        d=dict(ch=64, ch_mult=(1, 2, 4, 4), num_res_blocks=1, attn_resolutions=()),
        eps=dict(ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,), dropout=0.1),
    ),
    # 28x28x1, ~0.2M parameters per network: for CPU tests.
    "tiny": _image(
        28, 1,
        g=dict(nz=16, ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(14,), z_emb_dim=32,
               n_mapping_layers=2),
        d=dict(ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=()),
        eps=dict(ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(14,)),
    ),
    # 2-D toy data (e.g. 8 Gaussians on a ring): MLPs that train on 2 CPU cores in minutes. Four hidden layers
    # for G and the denoiser, three for D: measured on ring8 / grid25 (benchmarks/results/sweep-2d/README.md).
    "toy2d": {
        "kind": "toy", "image_size": None, "channels": 2,
        "generator": dict(dim=2, nz=2, hidden=128, num_layers=4),
        "discriminator": dict(dim=2, hidden=128, num_layers=3),
        "denoiser": dict(dim=2, hidden=128, num_layers=4),
    },
}
# The 25-Gaussian grid: the same MLPs, the discriminator with 128 random Fourier features of its input (0.2
# cycles per unit). A plain MLP discriminator stays at chance there (0/25 modes after 5k steps): it learns the
# grid's 25 narrow bumps far slower than the generator matches the grid's coarse spread. Measured in
# benchmarks/results/sweep-2d/README.md; on ring8 the same features cost mode balance, so toy2d keeps a plain D.
PRESETS["grid25"] = copy.deepcopy(PRESETS["toy2d"])
PRESETS["grid25"]["discriminator"].update(fourier=128, fourier_scale=0.2)


def preset(name: str) -> Dict[str, Any]:
    """A deep copy of the named preset (safe to modify)."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def build(preset_or_config: Union[str, Dict[str, Any]], role: str, num_classes: Optional[int] = None) -> nn.Module:
    """The ``role`` network ("generator", "discriminator" or "denoiser") of a preset name or config dict;
    ``num_classes`` (if given) makes it class-conditional (with the extra null class)."""
    if isinstance(preset_or_config, str):
        cfg = preset(preset_or_config)
    elif isinstance(preset_or_config, dict):
        cfg = copy.deepcopy(preset_or_config)
        if cfg.get("kind") not in _CLASSES:
            raise ValueError(f"preset: a config dict needs 'kind' in {sorted(_CLASSES)}, got {cfg.get('kind')!r}")
    else:
        raise TypeError(f"preset: expected a preset name or a config dict, got {type(preset_or_config).__name__}")
    if role not in ROLES:
        raise ValueError(f"role: expected one of {ROLES}, got {role!r}")
    if role not in cfg:
        raise ValueError(f"preset: the config dict has no {role!r} entry")
    kwargs = dict(cfg[role])
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return _CLASSES[cfg["kind"]][role](**kwargs)
