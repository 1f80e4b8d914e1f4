"""The five adversarial objectives of the per-step GAN: f-GANs (JS, squared Hellinger, reverse KL, total variation)
and Wasserstein.

Convention (one for every loss): the raw discriminator output V is **larger on real pairs**. An f-GAN uses the
output activation g_f and the convex conjugate f* of Nowozin, Cseke & Tomioka (2016, Table 2); the discriminator
maximises the variational lower bound

    D_f(P_data || P_model) >= E_data[g_f(V)] - E_model[f*(g_f(V))]                  (``divergence``)

    name        g_f(V)          f*(t)             optimal V       bound at the optimum
    js          -softplus(-V)   -log(1 - e^t)     log r           2 JSD - log 4
    hellinger   1 - e^{-V}      t / (1 - t)       log(r) / 2      int (sqrt p - sqrt q)^2  (= 2 H^2, H^2 = 1 - BC)
    rkl         -e^{-V}         -1 - log(-t)      log r           KL(P_model || P_data)
    tv          tanh(V) / 2     t  (|t| <= 1/2)   sign(log r) oo  1/2 int |p - q|

with r = p_data / p_model. In closed form (constants dropped) the losses minimised are

    name        discriminator                   generator non-saturating  generator saturating (minimax)
    js          softplus(-V_r) + softplus(V_f)  softplus(-V_f)            -softplus(V_f)
    hellinger   e^{-V_r} + e^{V_f}              e^{-V_f}                  -e^{V_f}
    rkl         e^{-V_r} + V_f                  e^{-V_f}                  -V_f
    tv          (tanh V_f - tanh V_r) / 2       -tanh(V_f) / 2            (same)
    wasserstein V_f - V_r  (+ gp_lambda * GP)   -V_f                      (same)

each a batch mean; the non-saturating generator minimises -E_model[g_f(V)], the saturating one
-E_model[f*(g_f(V))]. ``log(1 - exp(.))`` is never evaluated (softplus forms), and for hellinger and rkl the
logit enters as the soft clamp s = clamp * tanh(V / clamp) (default clamp 15): their losses are exponentials that
grow without bound once real and fake separate. Since s is a monotone bijection onto (-clamp, clamp), g_f(s(V))
is still a valid activation and the bound stays a true lower bound (at the optimum V = clamp * atanh(V* / clamp)).

Mapping to the study's slides: the slides write Hellinger and reverse KL with V flipped (high V = fake): their
V is our -V, i.e. their D losses e^{V_r} + e^{-V_f} (Hellinger) and e^{V_r} - V_f (reverse KL) are ours with
V -> -V. The slides' TV omits the 1/2: their D loss tanh V_f - tanh V_r is twice ours (every gradient doubled;
with Adam practically the same run). Up to these signs, scales and dropped constants the objectives are the same.

Defaults, measured with ``python -m fastddgan.losses.probe`` (two-mode 1-D target, MLP G and D; "k/n" = runs
covering both modes; R1 gamma 0.02 as in DDGAN unless said otherwise):

    js          non-saturating 5/5, saturating 5/5 (no R1: 3/3, 3/3)      -> non_saturating (the standard GAN)
    hellinger   non-saturating 1/5, saturating 5/5 (no R1: 1/3, 3/3)      -> saturating
    rkl         non-saturating 3/15, saturating 6/15 (no R1: 1/5, 0/5)    -> saturating; both 5/5 with R1 gamma 1
    tv          4/5 (the two forms coincide); 0/3 without R1, 3/3 with gamma 0.1 to 10
    wasserstein gp_lambda 0.1: 4/5, 0.3: 5/5, 1: 5/5, 3: 0/5, 10: 0/3 (n_critic 1); n_critic 5 no better than 1
                at 0.1 and 1 (3/3 each) for 5x the critic cost  -> gp_lambda 1, n_critic 1

Total variation needs the drift penalty (``drift`` * E_data[V^2], default 0.1 for tv, 0 otherwise). Measured on
ring8 (DDGAN T = 4, 20k steps, ``benchmarks/toy2d_screen.py`` with ``curve=500``): with R1 0.05 alone, from step
500 on the logits of true *and* generated pairs sit together at |V| = 6-11, so tanh is flat: the bound and G's
gradient sech^2(V_f) / 2 are 0 and D's gradient vanishes too, while Adam's normalised steps keep the logits
wandering (0/8 modes, 1% within 3 std). R1 1 / 10 keeps the logits near 0 but D too flat to resolve the modes
(7/8, 45% / 8/8, 54%). The drift penalty keeps V in tanh's linear range without flattening D: drift 0.01 -> 8/8,
62%; drift 0.1 -> 8/8, 94% (as JS).

The non-saturating Hellinger / reverse-KL generators collapse to one mode because their gradient e^{-V_f} grows
as the discriminator grows confident. Reverse KL is mode-seeking by nature (it estimates KL(model || data)):
give it a stronger R1 (gamma around 1 on the probe).

R1 (``r1_penalty``) applies to the raw V of any f-GAN; its gamma needs retuning per loss (logit scales differ).
Wasserstein needs the gradient penalty (``gradient_penalty``) on interpolates of x_{t-1} only; R1 is not a
substitute for the Lipschitz constraint, and a WGAN critic should not use minibatch-stddev or BatchNorm.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from .. import _checks, ops
from ..ops.reference import DISCRIMINATOR, GENERATOR_NON_SATURATING, GENERATOR_SATURATING, KINDS

GENERATOR_FORMS = ("non_saturating", "saturating")
DEFAULT_CLAMP = 15.0
DEFAULT_GP_LAMBDA = 1.0  # measured, see the module docstring
DEFAULT_N_CRITIC = 1
# divergence bound E_data[g_f(V)] - E_model[f*(g_f(V))] = constant - discriminator loss, per kind
DIVERGENCE_CONSTANT = (0.0, 2.0, 1.0, 0.0, 0.0)


def _pair(real, fake) -> Tuple[Tensor, Tensor]:
    real, fake = _checks.logits("real_logits", real), _checks.logits("fake_logits", fake)
    if real.device != fake.device:
        raise ValueError(f"fake_logits: expected a tensor on {real.device} (the device of real_logits), "
                         f"got {fake.device}")
    if real.dtype != fake.dtype:
        dtype = torch.promote_types(real.dtype, fake.dtype)
        real, fake = real.to(dtype), fake.to(dtype)
    return real, fake


class GANLoss:
    """Base of the objectives: ``discriminator``, ``generator`` and ``divergence`` on raw logits V (high on real).

    Each is a batch mean (a 0-d tensor, float32, or float64 for float64 logits); logits are (B,) or (B, 1), real
    and fake batches may differ in size. With ``fused=True`` (default) the loss and its gradient w.r.t. the logits
    come from one fused kernel of the active backend (``torch.ops.fastddgan.gan_loss``; ``backward`` only scales
    the saved gradient; double backward is exact too). ``fused=False``, or the ``torch`` backend, uses the plain
    PyTorch expressions of :mod:`fastddgan.ops.reference` through autograd.
    """

    name: str = ""
    kind: int = -1
    default_generator_form = "non_saturating"
    needs_gradient_penalty = False
    n_critic = 1  # discriminator steps per generator step
    default_drift = 0.0  # weight of the drift penalty E_data[V^2] (Karras et al. 2018) added to the D loss

    def __init__(self, generator_form: Optional[str] = None, fused: bool = True, drift: Optional[float] = None):
        self.drift = _checks.finite_number("drift", self.default_drift if drift is None else drift)
        if generator_form is None:
            generator_form = self.default_generator_form
        if generator_form not in GENERATOR_FORMS:
            raise ValueError(f"generator_form: expected one of {GENERATOR_FORMS} (or None for the default of "
                             f"{self.name!r}, {self.default_generator_form!r}), got {generator_form!r}")
        self.generator_form = generator_form
        self.fused = bool(fused)
        self.clamp = 0.0

    def _reduce(self, real: Optional[Tensor], fake: Tensor, part: int) -> Tensor:
        if self.fused and ops.select(fake.device) != "torch":
            return ops.gan_loss(real, fake, self.kind, part, self.clamp)[0]
        return ops.reference.gan_loss_value(real, fake, self.kind, part, self.clamp)

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The discriminator (critic) loss to minimise; see the module docstring for the closed forms."""
        real, fake = _pair(real_logits, fake_logits)
        return self._reduce(real, fake, DISCRIMINATOR)

    def generator(self, fake_logits: Tensor) -> Tensor:
        """The generator loss to minimise, in the form ``self.generator_form``."""
        part = GENERATOR_NON_SATURATING if self.generator_form == "non_saturating" else GENERATOR_SATURATING
        return self._reduce(None, _checks.logits("fake_logits", fake_logits), part)

    def divergence(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The variational lower bound E_data[g_f(V)] - E_model[f*(g_f(V))] (Wasserstein: E_real[V] - E_fake[V])
        that the discriminator maximises: an estimate of the divergence, for logging."""
        return DIVERGENCE_CONSTANT[self.kind] - self.discriminator(real_logits, fake_logits)

    def divergence_per_group(self, real_logits: Tensor, fake_logits: Tensor, group: Tensor, n_groups: int) -> Tensor:
        """``divergence`` within groups: entry k is the bound on the pairs (real_logits[i], fake_logits[i]) whose
        ``group[i]`` is k (e.g. the DDGAN step t of pair i), NaN for a group without pairs; (n_groups,) float32 (float64
        for float64 logits), no host synchronisation. The count-weighted mean of the entries is ``divergence``."""
        real, fake = _pair(real_logits, fake_logits)
        real, fake = real.reshape(-1), fake.reshape(-1)
        if group.shape != real.shape or fake.shape != real.shape:
            raise ValueError(f"group: expected one index per pair, shape {tuple(real.shape)} like real_logits and "
                             f"fake_logits, got {tuple(group.shape)} (fake_logits {tuple(fake.shape)})")
        acc = ops.reference.compute_dtype(fake.dtype)
        terms = (ops.reference.real_term(self.kind, real.to(acc), self.clamp)[0]
                 + ops.reference.fake_term(self.kind, DISCRIMINATOR, fake.to(acc), self.clamp)[0])
        sums = terms.new_zeros(n_groups).index_add_(0, group, terms)
        counts = terms.new_zeros(n_groups).index_add_(0, group, torch.ones_like(terms))  # bincount would sync (CUDA)
        return DIVERGENCE_CONSTANT[self.kind] - sums / counts

    def _options(self) -> str:
        return f"generator_form={self.generator_form!r}, fused={self.fused}, drift={self.drift}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._options()})"


class FGANLoss(GANLoss):
    """An f-GAN objective; ``clamp`` is the soft-clamp scale of V inside the exponentials (hellinger, rkl)."""

    def __init__(self, generator_form: Optional[str] = None, clamp: float = DEFAULT_CLAMP, fused: bool = True,
                 drift: Optional[float] = None):
        super().__init__(generator_form, fused, drift)
        self.clamp = _checks.finite_number("clamp", clamp, what="a finite number >= 0 (0 disables the soft clamp)")

    def _options(self) -> str:
        return f"{super()._options()}, clamp={self.clamp}"


class JSLoss(FGANLoss):
    """Standard GAN (Jensen-Shannon, bound 2 JSD - log 4): D softplus(-V_r) + softplus(V_f)."""

    name, kind = "js", KINDS["js"]
    default_generator_form = "non_saturating"


class HellingerLoss(FGANLoss):
    """Squared Hellinger, f(u) = (sqrt(u) - 1)^2 (bound int (sqrt p - sqrt q)^2): D e^{-V_r} + e^{V_f}."""

    name, kind = "hellinger", KINDS["hellinger"]
    default_generator_form = "saturating"


class ReverseKLLoss(FGANLoss):
    """Reverse KL, KL(P_model || P_data), f(u) = -log u: D e^{-V_r} + V_f."""

    name, kind = "rkl", KINDS["rkl"]
    default_generator_form = "saturating"


class TotalVariationLoss(FGANLoss):
    """Total variation, f(u) = |u - 1| / 2 (bound 1/2 int |p - q|): D (tanh V_f - tanh V_r) / 2. Both generator
    forms are -tanh(V_f) / 2."""

    name, kind = "tv", KINDS["tv"]
    default_generator_form = "non_saturating"
    default_drift = 0.1  # measured on ring8: see the module docstring


class WassersteinLoss(GANLoss):
    """WGAN-GP critic (Gulrajani et al. 2017): critic loss E_fake[V] - E_real[V], generator -E_fake[V] (both
    generator forms are the same). The caller adds ``gp_lambda * gradient_penalty(...)`` (interpolates of
    x_{t-1} only, the same x_t, t, y) and runs ``n_critic`` critic steps per generator step. The critic needs a
    Lipschitz constraint; R1 is no substitute, and no minibatch-stddev or BatchNorm in the critic."""

    name, kind = "wasserstein", KINDS["wasserstein"]
    needs_gradient_penalty = True

    def __init__(self, generator_form: Optional[str] = None, gp_lambda: float = DEFAULT_GP_LAMBDA,
                 n_critic: int = DEFAULT_N_CRITIC, fused: bool = True, drift: Optional[float] = None):
        super().__init__(generator_form, fused, drift)
        self.gp_lambda = _checks.finite_number("gp_lambda", gp_lambda)
        self.n_critic = _checks.integer("n_critic", n_critic, 1)

    def _options(self) -> str:
        return f"{super()._options()}, gp_lambda={self.gp_lambda}, n_critic={self.n_critic}"


LOSSES = {cls.name: cls for cls in (JSLoss, HellingerLoss, ReverseKLLoss, TotalVariationLoss, WassersteinLoss)}
DEFAULT_LOSS = "js"


def get_loss(name: str = DEFAULT_LOSS, generator_form: Optional[str] = None, **options) -> GANLoss:
    """The objective ``name`` of :data:`LOSSES` (``js`` default, ``hellinger``, ``rkl``, ``tv``, ``wasserstein``).

    ``generator_form``: ``"non_saturating"`` or ``"saturating"`` (None: the loss's measured default).
    Options: ``fused`` and ``drift`` (all), ``clamp`` (f-GANs), ``gp_lambda`` and ``n_critic`` (wasserstein).
    """
    if isinstance(name, GANLoss):
        if generator_form is not None or options:
            raise ValueError("get_loss: options can only be given with a loss name, not a loss object")
        return name
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"loss: unknown objective {name!r}; expected one of {sorted(LOSSES)}")
    cls = LOSSES[name]
    allowed = {"fused", "drift"} | ({"gp_lambda", "n_critic"} if cls is WassersteinLoss else {"clamp"})
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"get_loss: unknown option(s) {unknown} for {name!r}; expected some of {sorted(allowed)}")
    return cls(generator_form=generator_form, **options)
