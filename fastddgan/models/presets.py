"""Named model configurations and :func:`build`.

A preset is a dict ``{"kind": "image" | "toy", "image_size": S (None for toy), "channels": C (data dim for toy),
"generator": {...}, "discriminator": {...}, "denoiser": {...}}``; the role dicts are the keyword arguments of
DDGANGenerator / DDGANDiscriminator / UNet (image) or ToyGenerator / ToyDiscriminator / ToyDenoiser (toy).

A config dict (one read from a checkpoint, say) is checked by :func:`check_config` before any network is built:
option names the constructors take, sizes within :data:`LIMITS`, and at most :data:`MAX_PARAMETERS` parameters per
network (counted on the meta device, so nothing is allocated).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Dict, Iterable, Optional, Set, Union

import torch
from torch import nn

from .. import _checks
from .ddgan import DDGANDiscriminator, DDGANGenerator
from .toy import ToyDenoiser, ToyDiscriminator, ToyGenerator
from .unet import UNet

__all__ = ["PRESETS", "ROLES", "LIMITS", "MAX_PARAMETERS", "preset", "build", "check_config"]

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
    # 28x28x1 for 2 CPU cores (issue 12): a 16-channel generator U-Net (28 -> 14 -> 7, one block per level, no
    # attention, 50-d latent with a 2-layer mapping), a 16-channel discriminator, a 16-channel DDPM U-Net; sized by
    # benchmarks/image_cpu_sizes.py (0.35 s per DDGAN step and 0.17 s per DDPM step at batch 64 on one busy core).
    "mnist-cpu": _image(
        28, 1,
        g=dict(nz=50, ch=16, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(), z_emb_dim=128,
               n_mapping_layers=2, dropout=0.0),
        d=dict(ch=16, ch_mult=(1, 2, 4), num_res_blocks=1, attn_resolutions=()),
        eps=dict(ch=16, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(), dropout=0.1),
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


# Bounds far above any preset on the sizes that set how many modules a constructor makes or how large its inputs
# are (for sequences: their length); the parameter count bounds the rest.
LIMITS = {"channels": 64, "in_channels": 64, "out_channels": 64, "image_size": 4096, "num_layers": 256,
          "num_res_blocks": 64, "n_mapping_layers": 64, "num_heads": 256, "ch_mult": 16, "attn_resolutions": 16}
MAX_PARAMETERS = 10**9  # per network (4 GB in float32); the largest preset network (cifar10's generator) has 42M


def accepted_kwargs(cls) -> Set[str]:
    """The keyword arguments ``cls(...)`` takes (following ``**kwargs`` into the base class)."""
    names: Set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names


def _check_size(where: str, value: Any, limit: int) -> None:
    if isinstance(value, (list, tuple)):
        if len(value) > limit:
            raise ValueError(f"{where}: at most {limit} entries, got {len(value)}")
    else:
        _checks.integer(where, value, maximum=limit)


def check_config(cfg: Any, roles: Iterable[str] = ROLES, num_classes: Optional[int] = None) -> None:
    """Refuse a config dict (ValueError, one line naming the entry) whose ``roles`` networks could not be built
    as asked or would be unreasonably large: unknown option names, sizes above :data:`LIMITS`, more than
    :data:`MAX_PARAMETERS` parameters (built on the meta device to count them: nothing is allocated)."""
    if not isinstance(cfg, dict) or cfg.get("kind") not in _CLASSES:
        got = cfg.get("kind") if isinstance(cfg, dict) else type(cfg).__name__
        raise ValueError(f"preset: a config dict needs 'kind' in {sorted(_CLASSES)}, got {got!r}")
    for key in ("channels", "image_size"):
        if cfg.get(key) is not None:
            _check_size(f"preset: {key}", cfg[key], LIMITS[key])
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"role: expected one of {ROLES}, got {role!r}")
        kwargs = cfg.get(role)
        if not isinstance(kwargs, dict):
            raise ValueError(f"preset: the config dict has no {role!r} entry (a dict of keyword arguments)")
        cls = _CLASSES[cfg["kind"]][role]
        unknown = sorted(str(k) for k in set(kwargs) - accepted_kwargs(cls))
        if unknown:
            raise ValueError(f"preset: unknown {role} option(s) {unknown}; {cls.__name__} takes "
                             f"{sorted(accepted_kwargs(cls))}")
        for key, value in kwargs.items():
            if key in LIMITS:
                _check_size(f"preset: {role} {key}", value, LIMITS[key])
        with torch.device("meta"):
            count = sum(p.numel() for p in _construct(cfg, role, num_classes).parameters())
        if count > MAX_PARAMETERS:
            sizes = f"{kwargs}" + (f", num_classes {num_classes}" if num_classes is not None else "")
            raise ValueError(f"preset: the {role} would have {count:,} parameters; at most {MAX_PARAMETERS:,} "
                             f"(check its sizes: {sizes})")


def _construct(cfg: Dict[str, Any], role: str, num_classes: Optional[int]) -> nn.Module:
    kwargs = dict(cfg[role])
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return _CLASSES[cfg["kind"]][role](**kwargs)


def preset(name: str) -> Dict[str, Any]:
    """A deep copy of the named preset (safe to modify)."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def build(preset_or_config: Union[str, Dict[str, Any]], role: str, num_classes: Optional[int] = None) -> nn.Module:
    """The ``role`` network ("generator", "discriminator" or "denoiser") of a preset name or config dict (checked
    by :func:`check_config` first); ``num_classes`` (if given) makes it class-conditional (with the extra null
    class)."""
    if isinstance(preset_or_config, str):
        cfg = preset(preset_or_config)
        if role not in ROLES:
            raise ValueError(f"role: expected one of {ROLES}, got {role!r}")
    elif isinstance(preset_or_config, dict):
        cfg = copy.deepcopy(preset_or_config)
        check_config(cfg, (role,), num_classes)
    else:
        raise TypeError(f"preset: expected a preset name or a config dict, got {type(preset_or_config).__name__}")
    return _construct(cfg, role, num_classes)
