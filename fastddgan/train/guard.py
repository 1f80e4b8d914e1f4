"""Non-finite training: skipping steps whose gradients are not finite, and checking weights before they are
saved. (Going back to a checkpoint with halved learning rates is the trainer's ``_recover``.)"""

from __future__ import annotations

from typing import List

import torch


class TrainingDiverged(RuntimeError):
    """The loss stayed non-finite after the allowed recoveries."""


class NonFiniteGuard:
    """Optimiser pre-step hooks that skip a step whose gradients are not finite (its gradients are dropped, so
    Adam leaves those parameters and their moments untouched). One host sync per optimiser step."""

    def __init__(self, optimizers: List[torch.optim.Optimizer]):
        self.skipped_total = 0
        self.skipped_now = False
        for opt in optimizers:
            opt.register_step_pre_hook(self._hook)

    def _hook(self, opt, args, kwargs):
        grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        norms = torch.stack(torch._foreach_norm(grads))
        if not bool(torch.isfinite(norms).all()):
            for group in opt.param_groups:
                for p in group["params"]:
                    p.grad = None
            self.skipped_total += 1
            self.skipped_now = True


def all_finite(model) -> bool:
    """Whether every floating-point parameter of ``model`` is finite (one host sync)."""
    tensors = [p.detach() for p in model.parameters() if p.dtype.is_floating_point]
    return bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors))).all())


__all__ = ["TrainingDiverged", "NonFiniteGuard", "all_finite"]
