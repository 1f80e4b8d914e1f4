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

from typing import Optional, Sequence

import torch
from torch import nn

from . import ops
from ._amp import autocast, check_amp, grad_scaler, optimizer_step
from .ema import EMA
from .guidance import check_guidance, check_labels, drop_labels, guided
from .schedule import Schedule

PREDICTIONS = ("eps", "x0", "v")


class DDPM(nn.Module):
    """A DDPM: the network ``model(x_t, t, y=None)``, its schedule, an EMA copy and an Adam optimiser.

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

    gradient_sync = None

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
        self.amp = check_amp(amp)
        # the network as called in training; a tuple, so that nothing is registered twice
        self._train_net = (torch.compile(model) if compile else model,)
        self.schedule = Schedule.linear(schedule) if isinstance(schedule, int) else schedule
        self.prediction = prediction
        self.num_classes = num_classes
        self.p_uncond = p_uncond if num_classes is not None else 0.0
        self.grad_clip = grad_clip
        self.ema = EMA(model, ema_decay)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.grad_scalers = {"model": grad_scaler(self.amp)}
        self.step = 0

    @property
    def T(self) -> int:
        return self.schedule.T

    # ------------------------------------------------------------------ training
    @staticmethod
    def _signal_noise(schedule: Schedule, t: torch.Tensor, like: torch.Tensor):
        """(sqrt(ab_t), sqrt(1 - ab_t)) per sample, from the schedule's cached device table (no host copy)."""
        table = schedule.kernel_table("q_sample", torch.float32, like.device)
        shape = (-1,) + (1,) * (like.dim() - 1)
        return table[0][t].view(shape), table[2][t].view(shape)

    def loss(self, x0: torch.Tensor, y: Optional[torch.Tensor] = None,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """L_simple for one batch (labels dropped with probability p_uncond)."""
        y = drop_labels(check_labels(y, self.num_classes, x0.shape[0], x0.device), self.num_classes,
                        self.p_uncond, generator)
        t = torch.randint(0, self.T, (x0.shape[0],), device=x0.device, generator=generator)
        eps = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        x_t = ops.q_sample(x0, t, self.schedule, noise=eps)
        with autocast(self.amp, x0.device):
            out = self._train_net[0](x_t, t, y)
        if self.prediction == "eps":
            target = eps
        elif self.prediction == "x0":
            target = x0
        else:
            signal, noise = self._signal_noise(self.schedule, t, x0)
            target = signal * eps - noise * x0
        return (out.float() - target.float()).pow(2).mean()

    def train_step(self, x0: torch.Tensor, y: Optional[torch.Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> dict:
        """One optimiser step on L_simple, then the EMA update. Returns {"loss": detached 0-d tensor}."""
        self.model.train()
        loss = self.loss(x0, y, generator)
        self.optimizer.zero_grad(set_to_none=True)
        scaler = self.grad_scalers["model"]
        scaler.scale(loss).backward()
        optimizer_step(self.optimizer, scaler, self.gradient_sync, self.grad_clip)
        self.ema.update(self.model)
        self.step += 1
        return {"loss": loss.detach()}

    # ------------------------------------------------------------------ sampling
    def predict_eps(self, net: nn.Module, x_t: torch.Tensor, t: torch.Tensor, t_model: torch.Tensor,
                    schedule: Schedule, y: Optional[torch.Tensor] = None, guidance: float = 0.0) -> torch.Tensor:
        """The (guided) eps prediction at respaced step ``t`` whose network time index is ``t_model``."""
        out = guided(lambda x, tm, yy: net(x, tm, yy), (x_t, t_model), y, guidance, self.num_classes)
        if self.prediction == "eps":
            return out
        signal, noise = self._signal_noise(schedule, t, x_t)
        if self.prediction == "x0":
            return (x_t - signal * out) / noise
        return signal * out + noise * x_t  # v -> eps

    def sample(self, n: int, T: Optional[int] = None, y: Optional[torch.Tensor] = None, guidance: float = 0.0,
               ddim: bool = False, variance: str = "small", generator: Optional[torch.Generator] = None,
               **kwargs) -> torch.Tensor:
        """``n`` samples with ``T`` steps (default: the training T; any T <= it, evenly respaced), from the EMA
        network; see :func:`fastddgan.sample` for the other options."""
        from .sampling import sample

        check_guidance(guidance, self.num_classes, check_labels(y, self.num_classes, n, None), labels_name="y")
        return sample(self, T, n, class_labels=y, guidance=guidance, ddim=ddim, variance=variance,
                      generator=generator, **kwargs)


def ddim_step(eps: torch.Tensor, x_t: torch.Tensor, i: int, schedule: Schedule, clip_x0: bool = True):
    """Deterministic DDIM (eta = 0): x0 from eps (clipped), then x_{t-1} = sqrt(ab_prev) x0 + sqrt(1-ab_prev) eps'."""
    ab, ab_prev = float(schedule.alphas_cumprod[i]), float(schedule.alphas_cumprod_prev[i])
    x0 = (x_t - (1 - ab) ** 0.5 * eps) / ab**0.5
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        eps = (x_t - ab**0.5 * x0) / (1 - ab) ** 0.5
    return ab_prev**0.5 * x0 + (1 - ab_prev) ** 0.5 * eps
