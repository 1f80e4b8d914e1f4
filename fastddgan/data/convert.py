"""uint8 images <-> the model's range [-1, 1]: the one pair of conversions every module uses; and the bytes of the
plots' [0, 1] colour images.

    to_model_range(u)  u / 127.5 - 1            uint8 in, float32 in [-1, 1] out (on u's device)
    to_uint8(x)        round((x + 1) * 127.5)    float in, uint8 out, clamped to [0, 255]; inverts to_model_range
    unit_to_uint8(c)   round(clamp(c, 0, 1) * 255)  colours in [0, 1] (the pictures of train/plots) to uint8

to_uint8(x) == unit_to_uint8((x + 1) / 2) byte for byte (float32; tests/test_data.py): model samples go through
to_uint8, pictures drawn in [0, 1] through unit_to_uint8.
"""

from __future__ import annotations

import torch


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32 in [-1, 1]: x / 127.5 - 1 (on x's device)."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8:
        raise ValueError(f"x: expected a uint8 tensor, got "
                         f"{type(x).__name__ if not isinstance(x, torch.Tensor) else x.dtype}")
    return x.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] back to uint8: round((x + 1) * 127.5), clamped to [0, 255]; exact inverse of to_model_range."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x: expected a floating-point tensor, got "
                         f"{type(x).__name__ if not isinstance(x, torch.Tensor) else x.dtype}")
    return x.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def unit_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Colour images in [0, 1] (the plots' pictures) to uint8: round(clamp(x, 0, 1) * 255)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x: expected a floating-point tensor, got "
                         f"{type(x).__name__ if not isinstance(x, torch.Tensor) else x.dtype}")
    return (x.detach().clamp(0, 1) * 255).round_().to(torch.uint8)
