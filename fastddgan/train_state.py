"""The training state of a model: what training keeps besides the weights, serialised through one state dict.

    state = TrainState({"g": opt_g, "d": opt_d}, {"g": scaler_g, "d": scaler_d}, schedulers=[...])
    state.backward("d", loss_d); state.optimizer_step("d")      # zero_grad, scaled backward; sync, unscale, step
    state.advance()                                               # LR schedules, step + 1
    checkpoint = state.state_dict()                               # {"optimizers", "schedulers", "grad_scalers", "step"}
    state.load_state_dict(checkpoint)

Optimisers and fp16 loss scalers are named alike (DDGAN: "g", "d"; DDPM: "model"). ``gradient_sync``: None, or
``sync(optimizer)`` called between backward and each optimiser step (data-parallel training sets it to the gradient
average of :mod:`fastddgan.train.distributed`). The learning-rate surgery of resuming and recovering
(:meth:`stretch_schedules`, :meth:`scale_learning_rates`) is here too, next to the schedulers it edits.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from ._amp import optimizer_step


# the optimiser's implementation, chosen by this process (what this torch and device support), not by a checkpoint
_IMPLEMENTATION_KEYS = ("fused", "foreach")


def adam(params, lr: float, betas: Sequence[float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam, fused into one kernel per step where this torch has that for the parameters' device (CPU from torch
    2.4, CUDA), else torch's default implementation: the same update up to float rounding (2-D training steps:
    5-7% faster)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=True)
    except (RuntimeError, TypeError, ValueError):  # an older torch, or a device without the fused kernel
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas))


class TrainState:
    def __init__(self, optimizers: Dict[str, torch.optim.Optimizer], grad_scalers: Dict[str, torch.amp.GradScaler],
                 schedulers: Sequence[Any] = (), step: int = 0):
        self.optimizers = dict(optimizers)
        self.grad_scalers = dict(grad_scalers)
        self.schedulers: List[Any] = list(schedulers)
        self.step = int(step)
        self.gradient_sync: Optional[Callable[[torch.optim.Optimizer], None]] = None

    # ------------------------------------------------------------------ one optimiser step
    def backward(self, name: str, loss: torch.Tensor) -> None:
        """Clear optimiser ``name``'s gradients, then backward of its (fp16: scaled) loss."""
        self.optimizers[name].zero_grad(set_to_none=True)
        self.grad_scalers[name].scale(loss).backward()

    def optimizer_step(self, name: str, max_norm: Optional[float] = None) -> None:
        """The step of optimiser ``name`` after :meth:`backward` (gradient sync, unscale and clip, scaler step)."""
        optimizer_step(self.optimizers[name], self.grad_scalers[name], self.gradient_sync, max_norm)

    def advance(self) -> None:
        """The end of one training iteration: the LR schedules step, ``step`` + 1."""
        with warnings.catch_warnings():  # fp16: the loss scaler skips the first steps while its scale comes down,
            # so a schedule may step before its optimiser ever did (on purpose: the schedule follows iterations)
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            for scheduler in self.schedulers:
                scheduler.step()
        self.step += 1

    # ------------------------------------------------------------------ learning rates
    @property
    def learning_rate(self) -> float:
        """The current learning rate of the first optimiser's first parameter group (what the logs show)."""
        return next(iter(self.optimizers.values())).param_groups[0]["lr"]

    def stretch_schedules(self, total_steps: int) -> None:
        """Make the cosine decays end at ``total_steps`` (after resuming with another --steps): T_max and the current
        learning rates become the closed form eta_min + (base - eta_min) (1 + cos(pi step / T_max)) / 2, from which
        the scheduler's recursive update continues exactly."""
        for scheduler in self.schedulers:
            if scheduler.T_max == total_steps:
                continue
            scheduler.T_max = total_steps
            e = min(scheduler.last_epoch, total_steps)
            lrs = [scheduler.eta_min + (base - scheduler.eta_min) * (1 + math.cos(math.pi * e / total_steps)) / 2
                   for base in scheduler.base_lrs]
            for group, lr in zip(scheduler.optimizer.param_groups, lrs):
                group["lr"] = lr
            scheduler._last_lr = lrs

    def scale_learning_rates(self, scale: float) -> None:
        """Multiply every learning rate, now and in the schedules' base rates, by ``scale``."""
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] *= scale
        for scheduler in self.schedulers:
            scheduler.base_lrs = [lr * scale for lr in scheduler.base_lrs]
            scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]

    # ------------------------------------------------------------------ state
    def state_bytes(self) -> int:
        """About how many bytes the optimisers' state takes (Adam: two moments per parameter), whether or not a step
        has created it yet."""
        return sum(2 * p.numel() * p.element_size() for opt in self.optimizers.values()
                   for group in opt.param_groups for p in group["params"])

    def state_dict(self) -> Dict[str, Any]:
        """``{"optimizers": {name: ...}, "schedulers": [...], "grad_scalers": {name: ...} (enabled ones), "step"}``:
        the entries of a checkpoint file of the same names."""
        return {"optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
                "schedulers": [s.state_dict() for s in self.schedulers],
                "grad_scalers": {name: s.state_dict() for name, s in self.grad_scalers.items() if s.is_enabled()},
                "step": int(self.step)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Load a :meth:`state_dict` (or a checkpoint holding its entries): every optimiser (a missing one is a
        KeyError), the schedules saved, the loss scalers this state has enabled and the state holds, the step."""
        for name, opt in self.optimizers.items():
            implementation = [{k: group.get(k) for k in _IMPLEMENTATION_KEYS} for group in opt.param_groups]
            opt.load_state_dict(state["optimizers"][name])
            for group, chosen in zip(opt.param_groups, implementation):  # a checkpoint from another torch or device
                group.update(chosen)
        for scheduler, s in zip(self.schedulers, state.get("schedulers", [])):
            scheduler.load_state_dict(s)
        saved_scalers = state.get("grad_scalers", {})
        for name, scaler in self.grad_scalers.items():
            if scaler.is_enabled() and name in saved_scalers:
                scaler.load_state_dict(saved_scalers[name])
        self.step = int(state.get("step", 0))


class TrainStateAccess:
    """Mixin of the model families: the training state's parts under the names they had on the model
    (``model.step``, ``model.grad_scalers``, ``model.schedulers``, ``model.gradient_sync``)."""

    train_state: TrainState

    @property
    def step(self) -> int:
        return self.train_state.step

    @step.setter
    def step(self, value: int) -> None:
        self.train_state.step = int(value)

    @property
    def grad_scalers(self) -> Dict[str, torch.amp.GradScaler]:
        return self.train_state.grad_scalers

    @property
    def schedulers(self) -> List[Any]:
        return self.train_state.schedulers

    @property
    def gradient_sync(self):
        return self.train_state.gradient_sync

    @gradient_sync.setter
    def gradient_sync(self, sync) -> None:
        self.train_state.gradient_sync = sync


__all__ = ["TrainState", "TrainStateAccess", "adam"]
