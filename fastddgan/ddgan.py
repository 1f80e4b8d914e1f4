"""Denoising Diffusion GAN (Xiao, Kreis & Vahdat 2022): a few-step reverse diffusion whose every step is a
conditional GAN, trained with any of the objectives of :mod:`fastddgan.losses`.

One training iteration (indices as in :class:`fastddgan.Schedule`):

1. t ~ U{0..T-1}; a true pair (x_{t-1}, x_t) ~ q from ``ops.q_sample_pairs``.
2. D step: fake x'_{t-1} = posterior_sample(G(x_t, z, t), x_t, t) drawn under ``no_grad`` (no graph through G:
   the D step never pays for a generator backward); D loss on real and fake pairs (each pair through the same
   random differentiable transform when ``diffaug`` is set: :mod:`fastddgan.augment`), plus
   R1 gamma/2 E||grad_{x_{t-1}} D(x_{t-1}, x_t, t)||^2 on real pairs every ``lazy_reg`` steps (scaled by
   ``lazy_reg``), or for the Wasserstein critic the gradient penalty on interpolated x_{t-1}. The critic takes
   ``n_critic`` such steps per generator step. Logged: the D loss, the divergence bound it estimates, and (T <= 16)
   that bound per step t, ``divergence_t{t}``: the step whose generator D tells apart best.
3. G step: a new t, pair and z; the generator loss through the differentiable fused posterior draw.
4. EMA of G, used for sampling.

Class-conditional training drops the label jointly for G and D with probability ``p_uncond``; guided sampling
combines predictions in x0 space with the same z: x0~ = clamp((1 + w) G(x_t, z, t, y) - w G(x_t, z, t, null)),
then the usual posterior draw (for the same x_t this equals guidance on eps exactly).
"""

from __future__ import annotations

import functools
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from . import _checks, losses, ops
from ._amp import autocast, check_amp, grad_scaler
from .augment import PairAugment, parse_policy
from .ema import EMA
from .family import EMASampling, SamplingSetup, register
from .guidance import check_guidance, check_labels, drop_labels, guided
from .metric_keys import per_step_divergence_key
from .sampling import ddgan_sampler, sample
from .schedule import Schedule
from .train_state import TrainState, TrainStateAccess, adam

# up to this T the D step logs divergence_t0 .. divergence_t{T-1} (t = 0: the last step, the one to the data;
# the keys are named in fastddgan.metric_keys, where the curves, the progress line and the study report read them)
PER_STEP_METRICS_MAX_T = 16


def check_diversity_steps(steps) -> tuple:
    """``diversity_steps`` as a sorted tuple of distinct reverse-step indices >= 0 (at least one)."""
    if isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__"):
        raise TypeError(f"diversity_steps: expected a sequence of reverse-step indices, got {steps!r}")
    steps = tuple(steps)
    if not steps or not all(_checks.is_int(s) and s >= 0 for s in steps) or len(set(steps)) != len(steps):
        raise ValueError(f"diversity_steps: expected distinct integers >= 0 (0 is the last reverse step), got "
                         f"{steps!r}")
    return tuple(sorted(int(s) for s in steps))


def predict_x0(net: nn.Module, x_t, z, t, y=None, guidance: float = 0.0, num_classes: Optional[int] = None,
               clip_x0: bool = True) -> torch.Tensor:
    """G's x0 prediction; with guidance, (1 + w) G(x_t, z, t, y) - w G(x_t, z, t, null) (same z), clamped to
    [-1, 1] when ``clip_x0``."""
    x0 = guided(lambda x, zz, tt, yy: net(x, zz, tt, yy), (x_t, z, t), y, guidance, num_classes)
    return x0.clamp(-1, 1) if guidance != 0.0 and clip_x0 else x0


def x0_denoiser(net: nn.Module, device: torch.device, guidance: float, *, num_classes: Optional[int],
                clip_x0: bool):
    """The denoiser of :func:`fastddgan.sampling.ddgan_sampler`: ``(x_t, t, z, y=None) -> x0``."""
    return lambda x_t, t, z, y=None: predict_x0(net, x_t, z, t, y, guidance, num_classes, clip_x0)


class DDGANObjective:
    """The DDGAN training objective and how it is computed: the GAN loss (with R1 or the gradient penalty, drift),
    the label dropout, the discriminator's input augmentation, autocast and the (compiled) networks as called in
    training.

    One iteration (:meth:`train_step`) updates a :class:`DDGAN`'s networks and EMA through its
    :class:`~fastddgan.train_state.TrainState` (optimisers "g" and "d").
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss="js", loss_options: Optional[dict] = None,
                 r1_gamma: float = 0.02, lazy_reg: int = 1, p_uncond: float = 0.0, amp: Optional[str] = None,
                 compile: bool = False, diffaug: Optional[str] = None, diversity: float = 0.0,
                 diversity_steps: Sequence[int] = (0,)):
        _checks.integer("lazy_reg", lazy_reg, 1)
        self.diversity = _checks.finite_number("diversity", diversity)
        self.diversity_steps = check_diversity_steps(diversity_steps)
        if not isinstance(loss, (str, losses.GANLoss)):
            raise TypeError(f"loss: expected an objective name {tuple(losses.LOSSES)} or a fastddgan.losses.GANLoss, "
                            f"got {type(loss).__name__}")
        self.loss = losses.get_loss(loss, **(loss_options or {})) if isinstance(loss, str) else loss
        if self.loss.needs_gradient_penalty and getattr(discriminator, "minibatch_std", False):
            raise ValueError("discriminator: a Wasserstein critic must not couple samples (minibatch_std=True); "
                             "the gradient penalty assumes each logit depends on its own sample only")
        # (G, D) as called in training, compiled or not. Passes that need double backward (R1, the gradient
        # penalty) use the eager D: compiled graphs do not support it.
        self.discriminator = discriminator
        self.nets = (torch.compile(generator), torch.compile(discriminator)) if compile else \
            (generator, discriminator)
        self.r1_gamma = float(r1_gamma)
        self.lazy_reg = lazy_reg
        self.p_uncond = p_uncond
        self.amp = check_amp(amp)
        self.augment = PairAugment(diffaug) if parse_policy(diffaug) else None

    def pair(self, model: "DDGAN", x0: torch.Tensor, generator):
        """t ~ U{0..T-1} and a true pair (x_{t-1}, x_t) ~ q."""
        t = torch.randint(0, model.T, (x0.shape[0],), device=x0.device, generator=generator)
        x_prev, x_t = ops.q_sample_pairs(x0, t, model.schedule, generator=generator)
        return t, x_prev, x_t

    def fake_prev(self, model: "DDGAN", x_t, t, y, generator) -> torch.Tensor:
        """x'_{t-1} = posterior_sample(G(x_t, z, t, y), x_t, t) with a fresh z."""
        with autocast(self.amp, x_t.device):
            z = torch.randn(x_t.shape[0], model.nz, device=x_t.device, generator=generator)
            x0_pred = self.nets[0](x_t, z, t, y)
        return ops.posterior_sample(x0_pred.to(x_t.dtype), x_t, t, model.schedule, generator=generator)

    def d(self, x_prev, x_t, t, y, eager: bool = False) -> torch.Tensor:
        """D's logits (float32); ``eager``: the uncompiled D (double backward)."""
        net = self.discriminator if eager else self.nets[1]
        with autocast(self.amp, x_t.device):
            return net(x_prev, x_t, t, y).float()

    def d_seen(self, x_prev, x_t, t, y, generator, eager: bool = False) -> torch.Tensor:
        """D's logits on a pair as training shows it: both members through one random transform per sample when
        ``diffaug`` is set (gradients flow through it to x_prev: R1 and G's loss)."""
        if self.augment is not None:
            x_prev, x_t = self.augment((x_prev, x_t), generator)
        return self.d(x_prev, x_t, t, y, eager)

    def discriminator_step(self, model: "DDGAN", state: TrainState, x0: torch.Tensor, y: Optional[torch.Tensor],
                           generator=None) -> dict:
        t, x_prev, x_t = self.pair(model, x0, generator)
        r1_now = not self.loss.needs_gradient_penalty and self.r1_gamma > 0 and state.step % self.lazy_reg == 0
        x_prev.requires_grad_(r1_now)
        real = self.d_seen(x_prev, x_t, t, y, generator, eager=r1_now)
        with torch.no_grad():
            fake_prev = self.fake_prev(model, x_t, t, y, generator)
        fake = self.d_seen(fake_prev, x_t, t, y, generator)
        loss_d = self.loss.discriminator(real, fake)
        metrics = {"loss_d": loss_d.detach(), "divergence": self.loss.divergence(real.detach(), fake.detach())}
        if model.T <= PER_STEP_METRICS_MAX_T:  # which step's game the discriminator wins (NaN: no pair of that t)
            per_step = self.loss.divergence_per_group(real.detach(), fake.detach(), t, model.T)
            metrics.update({per_step_divergence_key(k): value for k, value in enumerate(per_step.unbind())})
        scaler = state.grad_scalers["d"]
        if r1_now:
            # the inner gradient from scaled logits (fp16 would underflow), then unscaled: R1 = |grad(S V)|^2 / S^2
            scale = scaler.scale(torch.ones((), device=real.device))
            r1 = losses.r1_penalty(scaler.scale(real), x_prev) / scale**2
            loss_d = loss_d + 0.5 * self.r1_gamma * self.lazy_reg * r1
            metrics["r1"] = r1.detach()
        if self.loss.drift:
            drift = real.pow(2).mean()
            loss_d = loss_d + self.loss.drift * drift
            metrics["drift"] = drift.detach()
        if self.loss.needs_gradient_penalty:
            gp = losses.gradient_penalty(lambda xp, xt, tt, yy: self.d_seen(xp, xt, tt, yy, generator, eager=True),
                                         x_prev.detach(), fake_prev, x_t, t, y, generator=generator)
            loss_d = loss_d + self.loss.gp_lambda * gp
            metrics["gp"] = gp.detach()
        state.backward("d", loss_d)
        state.optimizer_step("d")
        return metrics

    def generator_step(self, model: "DDGAN", state: TrainState, x0: torch.Tensor, y: Optional[torch.Tensor],
                       generator=None) -> dict:
        t, _, x_t = self.pair(model, x0, generator)
        self.discriminator.requires_grad_(False)  # no D weight gradients in the G step
        try:
            fake = self.d_seen(self.fake_prev(model, x_t, t, y, generator), x_t, t, y, generator)
            loss_g = self.loss.generator(fake)
            metrics = {"loss_g": loss_g.detach()}
            if self.diversity > 0:
                inverse_ratio = self.inverse_latent_ratio(model, x_t, t, y, generator)
                if inverse_ratio is not None:
                    # the chosen steps' share of the batch, S / T, in expectation (diversity x S / T: with S = 1
                    # exactly the last-step form's diversity / T)
                    loss_g = loss_g + (self.diversity * len(self.diversity_steps) / model.T) * inverse_ratio
                    metrics["inverse_latent_ratio"] = inverse_ratio.detach()
            state.backward("g", loss_g)
        finally:
            self.discriminator.requires_grad_(True)
        state.optimizer_step("g")
        model.ema.update(model.generator)
        return metrics

    def inverse_latent_ratio(self, model: "DDGAN", x_t, t, y, generator) -> Optional[torch.Tensor]:
        """The mode-seeking term (Mao et al. 2019) on the reverse steps ``diversity_steps`` (by default the last,
        t = 0: x_1 -> x_0, where G's output is the sample itself and its width can only come from z):
        mean_i 1 / (r_i + 1e-4), r_i = mean|G(x_t, z_1) - G(x_t, z_2)| / mean|z_1 - z_2| for two fresh latents per
        sample whose t_i is one of those steps (means over the sample's elements). Without it the 2-D generator
        ignores z inside a mode and makes the modes about half as wide as the data's
        (benchmarks/results/sweep-2d/README.md, session 13). In data units: its weight depends on the data's
        scale. None when the batch holds no such sample.

        G's loss adds ``diversity x S / T`` times this mean (S: the number of chosen steps). G's GAN loss is a mean
        over all B samples, an S / T share of which are chosen, so each chosen sample's term weighs the same
        against its GAN loss at every T. (With ``diversity`` alone as the weight, the term per sample grew T-fold
        and the modes widened with T: sweep-2d/README.md, session 16.)"""
        chosen = (t[:, None] == t.new_tensor(self.diversity_steps)[None]).any(1)
        if not bool(chosen.any()):
            return None
        x_1, t_0 = x_t[chosen], t[chosen]
        y_0 = None if y is None else y[chosen]
        n = x_1.shape[0]
        z_1 = torch.randn(n, model.nz, device=x_1.device, generator=generator)
        z_2 = torch.randn(n, model.nz, device=x_1.device, generator=generator)
        with autocast(self.amp, x_1.device):
            out_1, out_2 = self.nets[0](x_1, z_1, t_0, y_0), self.nets[0](x_1, z_2, t_0, y_0)
        ratio = (out_1.float() - out_2.float()).abs().flatten(1).mean(1) / (z_1 - z_2).abs().mean(1)
        return (1.0 / (ratio + 1e-4)).mean()

    def train_step(self, model: "DDGAN", state: TrainState, x0: torch.Tensor, y: Optional[torch.Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> dict:
        """``n_critic`` discriminator steps (1 for f-GANs), one generator step, the EMA update, the LR schedules."""
        model.generator.train()
        model.discriminator.train()
        y = drop_labels(check_labels(y, model.num_classes, x0.shape[0], x0.device), model.num_classes,
                        self.p_uncond, generator)
        metrics = {}
        for _ in range(getattr(self.loss, "n_critic", 1)):
            metrics = self.discriminator_step(model, state, x0, y, generator)
        metrics.update(self.generator_step(model, state, x0, y, generator))
        state.advance()
        return metrics


@register
class DDGAN(EMASampling, TrainStateAccess, nn.Module):
    """Generator ``G(x_t, z, t, y=None) -> x0``, discriminator ``D(x_{t-1}, x_t, t, y=None) -> (B,) logits``.

    The model is the networks, the EMA of G (used for sampling), the schedule and the prediction; ``objective``
    (:class:`DDGANObjective`) says how one training step is computed and ``train_state``
    (:class:`~fastddgan.train_state.TrainState`: Adam "g" and "d", the LR schedules, the fp16 loss scalers, the step)
    holds what training keeps besides the weights. ``model.train_step(x0, y)`` runs one iteration of the two.

    Args:
        generator, discriminator: the networks (``generator.nz`` is the latent size).
        schedule: a Schedule or an int T for ``Schedule.ddgan(T)``.
        loss: an objective name of ``fastddgan.losses.LOSSES`` or a loss object; ``loss_options`` go to
            ``losses.get_loss`` (e.g. generator_form, gp_lambda, n_critic).
        r1_gamma, lazy_reg: R1 weight and interval (f-GAN objectives).
        lr_g, lr_d, betas: Adam settings; ``total_steps`` enables cosine decay of both learning rates.
        ema_decay: EMA decay of G.
        num_classes, p_uncond: class conditioning and label dropout for classifier-free guidance.
        sample_shape: the shape of one sample; clip_x0: clamp guided x0 to [-1, 1] (images).
        amp: None, "bf16" or "fp16" autocast of the network calls ("fp16" with a loss scaler per network,
            ``grad_scalers["g"]`` and ``["d"]``, saved in checkpoints; R1 is computed from scaled logits).
        compile: wrap G and D in ``torch.compile`` for training (the fused ops trace without graph breaks).
        diffaug: None / "" (off) or a policy of :mod:`fastddgan.augment` ("translation", "cutout" or both,
            comma-separated): D sees every training pair through one random transform per sample.
        diversity: weight of the mode-seeking term per sample of the steps ``diversity_steps`` (G's loss adds
            ``diversity x S / T`` x :meth:`DDGANObjective.inverse_latent_ratio`, S the number of those steps;
            0: off).
        diversity_steps: the reverse steps t (0 .. T-1; 0 is the last, x_1 -> x_0) the term acts on.

    ``gradient_sync``: None, or ``sync(optimizer)`` called between backward and each step (data-parallel training
    sets it to the gradient average of :mod:`fastddgan.train.distributed`).
    """

    kind = "ddgan"
    ema_of = "generator"  # the network whose EMA copy samples
    roles = ("generator", "discriminator")

    def __init__(self, generator: nn.Module, discriminator: nn.Module, schedule: Schedule | int = 4,
                 loss="js", loss_options: Optional[dict] = None, r1_gamma: float = 0.02, lazy_reg: int = 1,
                 lr_g: float = 1.6e-4, lr_d: float = 1.25e-4, betas=(0.5, 0.9), total_steps: Optional[int] = None,
                 ema_decay: float = 0.999, num_classes: Optional[int] = None, p_uncond: float = 0.1,
                 sample_shape: Sequence[int] = (1, 28, 28), clip_x0: bool = True, amp: Optional[str] = None,
                 compile: bool = False, diffaug: Optional[str] = None, diversity: float = 0.0,
                 diversity_steps: Sequence[int] = (0,)):
        super().__init__()
        if not 0.0 <= p_uncond < 1.0:
            raise ValueError(f"p_uncond: expected a probability in [0, 1), got {p_uncond!r}")
        self.objective = DDGANObjective(generator, discriminator, loss, loss_options, r1_gamma, lazy_reg,
                                        p_uncond if num_classes is not None else 0.0, amp, compile, diffaug,
                                        diversity, diversity_steps)
        self.generator = generator
        self.discriminator = discriminator
        self.schedule = Schedule.ddgan(schedule) if isinstance(schedule, int) else schedule
        if max(self.objective.diversity_steps) >= self.schedule.T:
            raise ValueError(f"diversity_steps: expected reverse steps 0 .. T-1 = {self.schedule.T - 1}, got "
                             f"{list(self.objective.diversity_steps)}")
        self.num_classes = num_classes
        self.sample_shape = tuple(int(v) for v in sample_shape)
        if self.objective.augment is not None and len(self.sample_shape) != 3:
            raise ValueError(f"diffaug: augments images (C, H, W), got sample_shape {self.sample_shape}")
        self.clip_x0 = bool(clip_x0)
        self.nz = int(generator.nz)
        self.ema = EMA(generator, ema_decay)
        opt_g = adam(generator.parameters(), lr=lr_g, betas=betas)
        opt_d = adam(discriminator.parameters(), lr=lr_d, betas=betas)
        schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(opt, total_steps, eta_min=1e-5)
                      for opt in (opt_g, opt_d)] if total_steps else []
        amp = self.objective.amp
        self.train_state = TrainState({"g": opt_g, "d": opt_d}, {"g": grad_scaler(amp), "d": grad_scaler(amp)},
                                      schedulers)

    # ------------------------------------------------------------------ the family protocol
    @classmethod
    def default_schedule(cls, T: Optional[int] = None) -> Schedule:
        return Schedule.ddgan(4 if T is None else T)

    @classmethod
    def from_networks(cls, networks: Mapping[str, nn.Module], schedule: Schedule, num_classes: Optional[int] = None,
                      **options) -> "DDGAN":
        return cls(networks["generator"], networks["discriminator"], schedule, num_classes=num_classes, **options)

    def sampling_setup(self, T: Optional[int] = None, ddim: bool = False, variance: str = "small") -> SamplingSetup:
        """The generator's T steps (its training T); DDIM is refused."""
        if T is not None and T != self.T:
            raise ValueError(f"T: this DDGAN was trained with T={self.T} and samples with it, got T={T}")
        if ddim:
            raise ValueError("ddim: DDIM steps are for DDPM models; a DDGAN's steps are its generator's")
        denoiser = functools.partial(x0_denoiser, num_classes=self.num_classes, clip_x0=self.clip_x0)
        return SamplingSetup(ddgan_sampler, self.schedule, denoiser, {"nz": self.nz})

    # ------------------------------------------------------------------ training
    def train_step(self, x0: torch.Tensor, y: Optional[torch.Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> dict:
        """One iteration: ``n_critic`` discriminator steps (1 for f-GANs), one generator step, the EMA update.

        Returns the metrics as detached 0-d tensors (no host sync here; call ``.item()`` when logging)."""
        return self.objective.train_step(self, self.train_state, x0, y, generator)

    def discriminator_step(self, x0: torch.Tensor, y: Optional[torch.Tensor], generator=None) -> dict:
        return self.objective.discriminator_step(self, self.train_state, x0, y, generator)

    def generator_step(self, x0: torch.Tensor, y: Optional[torch.Tensor], generator=None) -> dict:
        return self.objective.generator_step(self, self.train_state, x0, y, generator)

    # the objective's parts under the names they had on the model
    loss = property(lambda self: self.objective.loss)
    r1_gamma = property(lambda self: self.objective.r1_gamma)
    lazy_reg = property(lambda self: self.objective.lazy_reg)
    p_uncond = property(lambda self: self.objective.p_uncond)
    diversity = property(lambda self: self.objective.diversity)
    diversity_steps = property(lambda self: self.objective.diversity_steps)
    opt_g = property(lambda self: self.train_state.optimizers["g"])
    opt_d = property(lambda self: self.train_state.optimizers["d"])

    # one objective piece at a time, on this model (tests/test_toy2d_quality.py and benchmarks probe the critic)
    def _pair(self, x0, generator):
        return self.objective.pair(self, x0, generator)

    def _fake_prev(self, x_t, t, y, generator):
        return self.objective.fake_prev(self, x_t, t, y, generator)

    def _d(self, x_prev, x_t, t, y, eager: bool = False):
        return self.objective.d(x_prev, x_t, t, y, eager)

    # ------------------------------------------------------------------ sampling
    def predict_x0(self, net: nn.Module, x_t, z, t, y=None, guidance: float = 0.0) -> torch.Tensor:
        """G's x0 prediction; with guidance, (1 + w) G(x_t, z, t, y) - w G(x_t, z, t, null) (same z), clamped."""
        return predict_x0(net, x_t, z, t, y, guidance, self.num_classes, self.clip_x0)

    def sample(self, n: int, T: Optional[int] = None, y: Optional[torch.Tensor] = None, guidance: float = 0.0,
               generator: Optional[torch.Generator] = None, **kwargs) -> torch.Tensor:
        """``n`` samples: x_{T-1} ~ N(0, I), then T generator calls (EMA weights) and fused posterior draws; see
        :func:`fastddgan.sample` for the other options."""
        check_guidance(guidance, self.num_classes, check_labels(y, self.num_classes, n, None), labels_name="y")
        return sample(self, T, n, class_labels=y, guidance=guidance, generator=generator, **kwargs)


__all__ = ["DDGAN", "DDGANObjective", "predict_x0", "x0_denoiser"]
