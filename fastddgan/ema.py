"""Exponential moving average of a module's weights, updated in place with fused ``torch._foreach`` ops.

    ema = EMA(generator, decay=0.999)
    ...optimizer.step(); ema.update(generator)
    ema.module  # the averaged copy, used for sampling and saved in checkpoints

theta_ema <- decay * theta_ema + (1 - decay) * theta for floating-point parameters; buffers are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    def __init__(self, module: nn.Module, decay: float = 0.999):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay: expected a number in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        ema_params, params = [], []
        for ema_p, p in zip(self.module.parameters(), module.parameters()):
            if ema_p.dtype.is_floating_point:
                ema_params.append(ema_p)
                params.append(p.detach())
        if ema_params:
            torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for ema_b, b in zip(self.module.buffers(), module.buffers()):
            ema_b.copy_(b)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
