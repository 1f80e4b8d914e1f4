"""Argument checks of the models' forward passes: bad input gets a ValueError/TypeError naming the argument.

Checks of tensor *values* (label ranges) need them on the host: done for CPU tensors, for device tensors only with
``FASTDDGAN_DEBUG=1`` (a host-device sync otherwise), and never while ``torch.compile`` traces.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import torch

_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def _check_values(x: torch.Tensor) -> bool:
    if torch.compiler.is_compiling():
        return False
    return x.device.type == "cpu" or os.environ.get("FASTDDGAN_DEBUG") == "1"


def data(name: str, x, shape: Sequence[Optional[int]]) -> torch.Tensor:
    """A floating-point tensor whose shape matches ``shape`` (None = any size, e.g. the batch)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {x.dtype}")
    if x.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
        want = "(" + ", ".join("B" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
    return x


def same_batch(name: str, x: torch.Tensor, like: torch.Tensor, like_name: str) -> None:
    if x.shape != like.shape:
        raise ValueError(f"{name}: expected shape {tuple(like.shape)} (the shape of {like_name}), got {tuple(x.shape)}")
    if x.device != like.device:
        raise ValueError(f"{name}: expected a tensor on {like.device} (the device of {like_name}), got {x.device}")


def timesteps(t, batch: int, device: torch.device) -> torch.Tensor:
    """``t`` as a tensor of shape (B,) on ``device`` (integer steps, or float for continuous time); an int is
    broadcast."""
    if isinstance(t, bool):
        raise TypeError("t: expected an int64 tensor of timesteps, got bool")
    if isinstance(t, int):
        return torch.full((batch,), t, dtype=torch.long, device=device)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t: expected an int64 tensor of shape ({batch},) or an int, got {type(t).__name__}")
    if t.dtype not in _INT_DTYPES and not t.is_floating_point():
        raise TypeError(f"t: expected an integer (int64) tensor, got {t.dtype}")
    if t.shape != (batch,):
        raise ValueError(f"t: expected shape ({batch},), one timestep per sample, got {tuple(t.shape)}")
    if t.device != device:
        raise ValueError(f"t: expected a tensor on {device} (the device of the input), got {t.device}")
    return t


def labels(y, batch: int, num_classes: Optional[int], device: torch.device) -> Optional[torch.Tensor]:
    """Class labels (B,) in [0, num_classes]; ``num_classes`` itself is the null class, used for ``y=None``."""
    if num_classes is None:
        if y is not None:
            raise ValueError("y: this model is unconditional (num_classes=None); pass y=None")
        return None
    if y is None:
        return torch.full((batch,), num_classes, dtype=torch.long, device=device)
    if isinstance(y, int) and not isinstance(y, bool):
        if not 0 <= y <= num_classes:
            raise ValueError(f"y: expected a label in [0, num_classes={num_classes}] "
                             f"({num_classes} = null class), got {y}")
        return torch.full((batch,), y, dtype=torch.long, device=device)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y: expected an int64 tensor of shape ({batch},), an int or None, got {type(y).__name__}")
    if y.dtype not in _INT_DTYPES:
        raise TypeError(f"y: expected an integer (int64) tensor of class labels, got {y.dtype}")
    if y.shape != (batch,):
        raise ValueError(f"y: expected shape ({batch},), one label per sample, got {tuple(y.shape)}")
    if y.device != device:
        raise ValueError(f"y: expected a tensor on {device} (the device of the input), got {y.device}")
    if batch > 0 and _check_values(y):
        lo, hi = (int(v) for v in torch.aminmax(y))
        if lo < 0 or hi > num_classes:
            raise ValueError(f"y: expected labels in [0, num_classes={num_classes}] ({num_classes} = null class), "
                             f"got values from {lo} to {hi}")
    return y.long()


def latent(z, batch: int, nz: Optional[int], device: torch.device) -> Optional[torch.Tensor]:
    """The latent ``z`` (B, nz) of a generator; must be None when the network has no latent input."""
    if nz is None:
        if z is not None:
            raise ValueError("z: this network has no latent input (nz=None); pass z=None")
        return None
    if z is None:
        raise ValueError(f"z: this network is a generator (nz={nz}) and needs a latent z of shape ({batch}, {nz}), "
                         f"e.g. torch.randn({batch}, {nz})")
    data("z", z, (batch, nz))
    if z.device != device:
        raise ValueError(f"z: expected a tensor on {device} (the device of the input), got {z.device}")
    return z


def positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return value


def optional_classes(num_classes) -> Optional[int]:
    return None if num_classes is None else positive_int("num_classes", num_classes)
