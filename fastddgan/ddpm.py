"""DDPM (Ho et al. 2020) with x0 / v prediction options and classifier-free guidance (Ho & Salimans 2022).

Training (L_simple): t ~ U{0..T-1}, eps ~ N(0, I), x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, and the network
``model(x_t, t, y)`` regresses its target with a mean squared error:

    prediction="eps"  target eps                                   (the paper's L_simple, default)
    prediction="x0"   target x0
    prediction="v"    target v = sqrt(ab_t) eps - sqrt(1 - ab_t) x0  (Salimans & Ho 2022)

Sampling runs at any respaced T' <= T (``Schedule.respace``): the network sees the original timestep index
(``schedule.timesteps``), each ancestral step is the fused ``fastddgan.ops.ddpm_step``, and ``ddim=True`` takes the
deterministic DDIM (eta = 0) update instead. Guidance: eps~ = (1 + w) eps(x, y) - w eps(x, null).
"""

from __future__ import annotations

import functools
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from . import _checks, ops
from ._amp import autocast, check_amp, grad_scaler
from .ema import EMA
from .family import EMASampling, SamplingSetup, register
from .guidance import check_guidance, check_labels, drop_labels, guided
from .sampling import ddim_sampler, ddim_step, ddpm_sampler, sample
from .schedule import Schedule
from .train_state import TrainState, TrainStateAccess, adam

PREDICTIONS = ("eps", "x0", "v")


def signal_noise(schedule: Schedule, t: torch.Tensor, like: torch.Tensor):
    """(sqrt(ab_t), sqrt(1 - ab_t)) per sample, from the schedule's cached device table (no host copy)."""
    table = schedule.kernel_table("q_sample", torch.float32, like.device)
    shape = (-1,) + (1,) * (like.dim() - 1)
    return table[0][t].view(shape), table[2][t].view(shape)


def predict_eps(net: nn.Module, x_t: torch.Tensor, t: torch.Tensor, t_model: torch.Tensor, schedule: Schedule,
                y: Optional[torch.Tensor] = None, guidance: float = 0.0, prediction: str = "eps",
                num_classes: Optional[int] = None) -> torch.Tensor:
    """The (guided) eps of a network predicting ``prediction``, at step ``t`` of ``schedule`` whose network time
    index is ``t_model``."""
    out = guided(lambda x, tm, yy: net(x, tm, yy), (x_t, t_model), y, guidance, num_classes)
    if prediction == "eps":
        return out
    signal, noise = signal_noise(schedule, t, x_t)
    if prediction == "x0":
        return (x_t - signal * out) / noise
    return signal * out + noise * x_t  # v -> eps


def eps_denoiser(net: nn.Module, device: torch.device, guidance: float, *, schedule: Schedule, prediction: str,
                 num_classes: Optional[int]):
    """The denoiser of :func:`fastddgan.sampling.ddpm_sampler` / ``ddim_sampler``: ``(x_t, t, y=None) -> eps`` at
    step ``t`` of the (respaced) ``schedule``."""
    timesteps = schedule.timesteps.to(device)  # the network's time index of each step, once (no copy per step)
    return lambda x_t, t, y=None: predict_eps(net, x_t, t, timesteps[t], schedule, y, guidance, prediction,
                                              num_classes)


class DDPMObjective:
    """L_simple (see the module doc) and how it is computed: label dropout, autocast, the (compiled) network as
    called in training, gradient clipping. One iteration (:meth:`train_step`) updates a :class:`DDPM`'s network and
    EMA through its :class:`~fastddgan.train_state.TrainState` (optimiser "model")."""

    def __init__(self, model: nn.Module, p_uncond: float = 0.0, grad_clip: Optional[float] = 1.0,
                 amp: Optional[str] = None, compile: bool = False):
        self.amp = check_amp(amp)
        self.net = torch.compile(model) if compile else model  # the network as called in training
        self.p_uncond = p_uncond
        self.grad_clip = grad_clip

    def loss(self, model: "DDPM", x0: torch.Tensor, y: Optional[torch.Tensor] = None,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """L_simple for one batch (labels dropped with probability p_uncond)."""
        y = drop_labels(check_labels(y, model.num_classes, x0.shape[0], x0.device), model.num_classes,
                        self.p_uncond, generator)
        t = torch.randint(0, model.T, (x0.shape[0],), device=x0.device, generator=generator)
        eps = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        x_t = ops.q_sample(x0, t, model.schedule, noise=eps)
        with autocast(self.amp, x0.device):
            out = self.net(x_t, t, y)
        if model.prediction == "eps":
            target = eps
        elif model.prediction == "x0":
            target = x0
        else:
            signal, noise = signal_noise(model.schedule, t, x0)
            target = signal * eps - noise * x0
        return (out.float() - target.float()).pow(2).mean()

    def train_step(self, model: "DDPM", state: TrainState, x0: torch.Tensor, y: Optional[torch.Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> dict:
        """One optimiser step on L_simple, then the EMA update. Returns {"loss": detached 0-d tensor}."""
        model.model.train()
        loss = self.loss(model, x0, y, generator)
        state.backward("model", loss)
        state.optimizer_step("model", self.grad_clip)
        model.ema.update(model.model)
        state.advance()
        return {"loss": loss.detach()}


@register
class DDPM(EMASampling, TrainStateAccess, nn.Module):
    """A DDPM: the network ``model(x_t, t, y=None)``, its schedule, what it predicts and an EMA copy (used for
    sampling); ``objective`` (:class:`DDPMObjective`) computes a training step and ``train_state``
    (:class:`~fastddgan.train_state.TrainState`: Adam "model", the fp16 loss scaler, the step) holds what training
    keeps besides the weights. ``model.train_step(x0, y)`` runs one step of the two.

    Args:
        model: the denoiser; ``t`` is the index into the training schedule; class ``num_classes`` is "null".
        schedule: the training schedule (default ``Schedule.linear(1000)``) or an int T for a linear one.
        prediction: "eps", "x0" or "v" (what the network outputs).
        num_classes: number of classes for class-conditional training (None: unconditional).
        p_uncond: probability of dropping the label during training (classifier-free guidance).
        sample_shape: the shape of one sample, e.g. (1, 28, 28) or (2,) for 2-D data.
        clip_x0: clip the x0 estimate to [-1, 1] while sampling (images in [-1, 1]; off for 2-D data).
        lr, ema_decay, grad_clip: optimiser settings.
        amp: None, "bf16" or "fp16" autocast of the training forward pass ("fp16" with a loss scaler,
            ``grad_scalers["model"]``, saved in checkpoints).
        compile: wrap the network in ``torch.compile`` for training.

    ``gradient_sync``: None, or ``sync(optimizer)`` called between backward and the step (data-parallel training
    sets it to the gradient average of :mod:`fastddgan.train.distributed`).
    """

    kind = "ddpm"
    ema_of = "model"  # the network whose EMA copy samples
    roles = ("denoiser",)

    def __init__(self, model: nn.Module, schedule: Schedule | int = 1000, prediction: str = "eps",
                 num_classes: Optional[int] = None, p_uncond: float = 0.1, sample_shape: Sequence[int] = (1, 28, 28),
                 clip_x0: bool = True, lr: float = 2e-4, ema_decay: float = 0.9999,
                 grad_clip: Optional[float] = 1.0, amp: Optional[str] = None, compile: bool = False):
        super().__init__()
        self.sample_shape = tuple(int(v) for v in sample_shape)
        self.clip_x0 = bool(clip_x0)
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction: expected one of {PREDICTIONS}, got {prediction!r}")
        if not 0.0 <= p_uncond < 1.0:
            raise ValueError(f"p_uncond: expected a probability in [0, 1), got {p_uncond!r}")
        self.model = model
        self.objective = DDPMObjective(model, p_uncond if num_classes is not None else 0.0, grad_clip, amp, compile)
        self.schedule = Schedule.linear(schedule) if isinstance(schedule, int) else schedule
        self.prediction = prediction
        self.num_classes = num_classes
        self.ema = EMA(model, ema_decay)
        self.train_state = TrainState({"model": adam(model.parameters(), lr=lr)},
                                      {"model": grad_scaler(self.objective.amp)})

    # ------------------------------------------------------------------ the family protocol
    @classmethod
    def default_schedule(cls, T: Optional[int] = None) -> Schedule:
        return Schedule.linear(1000 if T is None else T)

    @classmethod
    def from_networks(cls, networks: Mapping[str, nn.Module], schedule: Schedule, num_classes: Optional[int] = None,
                      **options) -> "DDPM":
        return cls(networks["denoiser"], schedule, num_classes=num_classes, **options)

    def sampling_setup(self, T: Optional[int] = None, ddim: bool = False, variance: str = "small") -> SamplingSetup:
        """Any T <= the training T (evenly respaced): ancestral steps with ``variance``, or DDIM."""
        if T is not None:
            _checks.integer("T", T, 1, self.T, expected=f"an integer in [1, {self.T}] (the DDPM's training T)")
        schedule = self.schedule.respace(T) if T is not None and T != self.T else self.schedule
        denoiser = functools.partial(eps_denoiser, schedule=schedule, prediction=self.prediction,
                                     num_classes=self.num_classes)
        if ddim:
            return SamplingSetup(ddim_sampler, schedule, denoiser, {"clip_x0": self.clip_x0})
        return SamplingSetup(ddpm_sampler, schedule, denoiser, {"clip_x0": self.clip_x0, "variance": variance})

    # ------------------------------------------------------------------ training
    def loss(self, x0: torch.Tensor, y: Optional[torch.Tensor] = None,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """L_simple for one batch (labels dropped with probability p_uncond)."""
        return self.objective.loss(self, x0, y, generator)

    def train_step(self, x0: torch.Tensor, y: Optional[torch.Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> dict:
        """One optimiser step on L_simple, then the EMA update. Returns {"loss": detached 0-d tensor}."""
        return self.objective.train_step(self, self.train_state, x0, y, generator)

    # the objective's and training state's parts under the names they had on the model
    p_uncond = property(lambda self: self.objective.p_uncond)
    grad_clip = property(lambda self: self.objective.grad_clip)
    optimizer = property(lambda self: self.train_state.optimizers["model"])

    # ------------------------------------------------------------------ sampling
    def predict_eps(self, net: nn.Module, x_t: torch.Tensor, t: torch.Tensor, t_model: torch.Tensor,
                    schedule: Schedule, y: Optional[torch.Tensor] = None, guidance: float = 0.0) -> torch.Tensor:
        """The (guided) eps prediction at respaced step ``t`` whose network time index is ``t_model``."""
        return predict_eps(net, x_t, t, t_model, schedule, y, guidance, self.prediction, self.num_classes)

    def sample(self, n: int, T: Optional[int] = None, y: Optional[torch.Tensor] = None, guidance: float = 0.0,
               ddim: bool = False, variance: str = "small", generator: Optional[torch.Generator] = None,
               **kwargs) -> torch.Tensor:
        """``n`` samples with ``T`` steps (default: the training T; any T <= it, evenly respaced), from the EMA
        network; see :func:`fastddgan.sample` for the other options."""
        check_guidance(guidance, self.num_classes, check_labels(y, self.num_classes, n, None), labels_name="y")
        return sample(self, T, n, class_labels=y, guidance=guidance, ddim=ddim, variance=variance,
                      generator=generator, **kwargs)


__all__ = ["DDPM", "DDPMObjective", "PREDICTIONS", "predict_eps", "eps_denoiser", "signal_noise", "ddim_step"]
