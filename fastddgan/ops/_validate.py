"""Argument checks of the public ops: bad input gets a ValueError/TypeError naming the argument and what was
expected, before any kernel runs."""

from __future__ import annotations

import os
from typing import Optional

import torch

from ..schedule import Schedule

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def data(name: str, x, like: Optional[torch.Tensor] = None, like_name: str = "x0") -> torch.Tensor:
    """A floating-point tensor with a batch dimension; with ``like``: same shape, dtype and device."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    dense(name, x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a floating-point tensor (float16, bfloat16, float32 or float64), "
                        f"got {x.dtype}")
    if x.dim() < 1:
        raise ValueError(f"{name}: expected a tensor with a batch dimension, got a 0-d tensor")
    if like is not None:
        if x.shape != like.shape:
            raise ValueError(f"{name}: expected shape {tuple(like.shape)} (the shape of {like_name}), "
                             f"got {tuple(x.shape)}")
        if x.device != like.device:
            raise ValueError(f"{name}: expected a tensor on {like.device} (the device of {like_name}), "
                             f"got {x.device}")
        if x.dtype != like.dtype:
            raise TypeError(f"{name}: expected dtype {like.dtype} (the dtype of {like_name}), got {x.dtype}")
    return x


def dense(name: str, x: torch.Tensor) -> torch.Tensor:
    """A strided tensor: the kernels read memory directly, and sparse tensors have no such memory."""
    if x.layout != torch.strided:
        raise TypeError(f"{name}: expected a dense tensor, got a {str(x.layout).replace('torch.', '')} tensor "
                        f"(call .to_dense() first)")
    return x


def schedule(s) -> Schedule:
    if not isinstance(s, Schedule):
        raise TypeError(f"schedule: expected a fastddgan.Schedule, got {type(s).__name__}")
    return s


def timesteps(t, x: torch.Tensor, T: int) -> torch.Tensor:
    """``t`` as an int64 tensor of shape (B,) on ``x``'s device, B = x.shape[0]; a Python int is broadcast."""
    batch = x.shape[0]
    if isinstance(t, bool):
        raise TypeError("t: expected an integer tensor of timesteps, got bool")
    if isinstance(t, int):
        if not 0 <= t < T:
            raise ValueError(f"t: expected a timestep in [0, T={T}), got {t}")
        return torch.full((batch,), t, dtype=torch.long, device=x.device)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t: expected an int64 tensor of shape ({batch},) or an int, got {type(t).__name__}")
    dense("t", t)
    if t.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise TypeError(f"t: expected an integer tensor (int64), got {t.dtype}")
    if t.shape != (batch,):
        raise ValueError(f"t: expected shape ({batch},), one timestep per sample of x0, got {tuple(t.shape)}")
    if t.device != x.device:
        raise ValueError(f"t: expected a tensor on {x.device} (the device of x0), got {t.device}")
    if not torch.compiler.is_compiling() and (t.device.type == "cpu" or os.environ.get("FASTDDGAN_DEBUG") == "1"):
        timestep_values(t, T)
    return t if t.dtype == torch.int64 else t.long()


def timestep_values(t: torch.Tensor, T: int) -> None:
    """The range check of ``t``'s values, which needs them on the host: :func:`timesteps` does it for CPU tensors,
    and for device tensors only with FASTDDGAN_DEBUG=1 (it costs a host-device sync); the registered ops repeat it
    for CPU tensors in their kernels, so that it holds under torch.compile too (which traces past the check in
    :func:`timesteps`). Kernels clamp unchecked device-side ``t`` into range, so they never read outside the
    table."""
    if t.numel() > 0:
        lo, hi = (int(v) for v in torch.aminmax(t))
        if lo < 0 or hi >= T:
            raise ValueError(f"t: expected values in [0, T={T}), got values from {lo} to {hi}")


def generator(g, device: torch.device) -> Optional[torch.Generator]:
    if g is None:
        return None
    if not isinstance(g, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(g).__name__}")
    if g.device.type != device.type:
        raise ValueError(f"generator: expected a generator for {device.type} tensors, got one for {g.device.type}")
    return g


def seed(s, device: Optional[torch.device], noise: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
    """An explicit Philox seed: an int64 tensor [key, sample_offset] (on ``device`` when one is given)."""
    if s is None:
        return None
    if noise is not None:
        raise ValueError("seed: give either noise or seed, not both")
    if not isinstance(s, torch.Tensor) or s.dtype != torch.int64 or s.shape != (2,):
        got = f"{s.dtype} tensor of shape {tuple(s.shape)}" if isinstance(s, torch.Tensor) else type(s).__name__
        raise TypeError(f"seed: expected an int64 tensor [key, sample_offset] of shape (2,), got {got}")
    dense("seed", s)
    if device is not None and s.device != device:
        raise ValueError(f"seed: expected a tensor on {device} (the device of the data), got {s.device}")
    return s


def choice(name: str, value, options) -> str:
    if value not in options:
        raise ValueError(f"{name}: expected one of {tuple(options)}, got {value!r}")
    return value
