"""Mixed precision for the network calls of training: ``amp`` is None (fp32), "bf16" or "fp16"."""

from __future__ import annotations

from typing import Optional

import torch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: Optional[str]) -> Optional[str]:
    if amp is not None and amp not in AMP_DTYPES:
        raise ValueError(f"amp: expected None, 'bf16' or 'fp16', got {amp!r}")
    return amp


def autocast(amp: Optional[str], device: torch.device):
    """``torch.autocast`` for ``device`` with the dtype of ``amp`` (disabled for None)."""
    dtype = AMP_DTYPES.get(amp)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
