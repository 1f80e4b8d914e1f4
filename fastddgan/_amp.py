"""Mixed precision for the network calls of training: ``amp`` is None (fp32), "bf16" or "fp16".

fp16 gradients underflow (and overflow) without loss scaling, so "fp16" comes with a dynamic loss scaler
(``torch.amp.GradScaler``: the loss is multiplied by S before backward, the gradients divided by S before the step,
a step with inf/NaN gradients skipped and S halved, S doubled after 2000 clean steps). bf16 has float32's range and
needs none; for None and "bf16" the scaler is disabled and :func:`optimizer_step` is a plain optimiser step.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: Optional[str]) -> Optional[str]:
    if amp is not None and amp not in AMP_DTYPES:
        raise ValueError(f"amp: expected None, 'bf16' or 'fp16', got {amp!r}")
    return amp


def autocast(amp: Optional[str], device: torch.device):
    """``torch.autocast`` for ``device`` with the dtype of ``amp`` (disabled for None)."""
    dtype = AMP_DTYPES.get(amp)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def grad_scaler(amp: Optional[str]) -> torch.amp.GradScaler:
    """A loss scaler, enabled for "fp16" only. Its scale lives on the device of the first loss it scales."""
    return torch.amp.GradScaler("cuda" if torch.cuda.is_available() else "cpu", enabled=amp == "fp16")


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
         sync: Optional[Callable[[torch.optim.Optimizer], None]] = None, max_norm: Optional[float] = None) -> None:
    """The optimiser step after ``scaler.scale(loss).backward()``: ``sync(optimizer)`` (the data-parallel gradient
    average, before the scaler looks for inf/NaN, so that every process takes the same decision), unscale and clip
    the gradient norm to ``max_norm`` if given, then the scaler's step (skipped on inf/NaN) and scale update."""
    if sync is not None:
        sync(optimizer)
    if max_norm is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], max_norm)
    scaler.step(optimizer)
    scaler.update()
