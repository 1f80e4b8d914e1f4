"""Diffusion ops: forward noising, true training pairs, the fused posterior draw and the fused DDPM step.

Index conventions are those of :class:`fastddgan.Schedule`. ``t`` is a per-sample int64 tensor of shape (B,)
(one batch may mix timesteps) or a Python int for the whole batch.

Noise. With ``noise=`` given, the ops are deterministic functions of their inputs (the path tests use to compare
backends exactly). Without it, the fused backends (cpp, cuda, triton) draw a 64-bit seed from ``generator`` (or
torch's default generator of the device, so ``torch.manual_seed`` reproduces results) into a device tensor and
generate the Gaussian noise inside the kernel from the counter-based Philox stream of :mod:`fastddgan.ops.philox`.
The seed is drawn by a torch RNG call and read by the kernel from device memory, so a captured CUDA graph draws
fresh noise on every replay. The ``torch`` backend (the eager reference) uses ``torch.randn`` instead, so its
samples differ from the fused backends' for the same seed; the fused backends agree with each other.

Every function here checks its arguments (``fastddgan/_checks.py``) and calls one registered op,
``torch.ops.fastddgan.*`` (``_library.py``), which runs on the backend :func:`select` chooses.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from .. import _checks
from ..schedule import Schedule
from . import _library, reference
from ._backends import (BACKENDS, BackendUnavailable, available, get_forced_backend, select, set_backend,
                        use_backend)
from .philox import philox_normal, seed_tensor
from .reference import compute_dtype

__all__ = [
    "q_sample", "q_sample_pairs", "posterior_sample", "ddpm_step", "gan_loss", "normal", "draw_seed", "compute_dtype",
    "BACKENDS", "BackendUnavailable", "available", "select", "set_backend", "use_backend", "get_forced_backend",
    "philox_normal", "seed_tensor", "reference",
]

# gan_loss(real?, fake, kind, part, clamp) -> (loss, d loss / d real, d loss / d fake): the fused reduction of a GAN
# objective (fastddgan.losses builds the objectives on it; codes and per-logit terms in reference.py). The op itself:
# its arguments are checked by the kernels (RuntimeError), the losses check the users' arguments.
gan_loss = _library.gan_loss


def draw_seed(device: torch.device, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A seed tensor ``[key, 0]`` (int64, on ``device``) with a fresh Philox key drawn from ``generator`` (default:
    the device's default generator). On CUDA this is a graph-capturable RNG call: each replay of a graph gives a
    new key."""
    key = torch.randint(0, _library.SEED_HIGH, (1,), dtype=torch.int64, device=device, generator=generator)
    return torch.nn.functional.pad(key, (0, 1))  # [key, 0]


def _run(op, like: torch.Tensor, head, noises, seed, generator, tail=()):
    """``op(*head, *noises, seed, *tail)`` on the backend :func:`select` chooses, with ``noises`` (a tuple: the op's
    one noise, or q_sample_pairs' two) and ``seed`` as given or, when neither is, a fresh draw from ``generator``:
    ``torch.randn`` noise on the ``torch`` backend (the eager reference), Philox keys for the fused backends'
    in-kernel noise (one seed [key, 0] per noise, drawn in order; two are stacked into the (2, 2) seed of
    q_sample_pairs). ``head`` holds the op's arguments before the noise (``like`` first).

    On the cpp backend, when nothing above the CPU kernel has work to do (no autograd, no tracing or modes:
    ``_library.direct_cpu_ok``), the call goes straight to the CPU kernel with the keys drawn in place into a
    per-thread seed tensor: the same keys as :func:`draw_seed` and the same result, for a fraction of the fixed
    cost."""
    fresh = seed is None and noises[0] is None
    # meta tensors with their noise or seed given go to the meta kernel whatever the choice (as the op itself does)
    backend = None if like.device.type == "meta" and not fresh else select(like.device)
    if backend == "cpp" and _library.direct_cpu_ok(*head[:2], *noises):
        if fresh:
            seed = _library.fresh_cpu_seed(generator, len(noises))
        return _library.direct_cpu(op, *head, *noises, seed, *tail)
    if fresh:
        if backend == "torch":
            noises = tuple(torch.randn(like.shape, dtype=like.dtype, device=like.device, generator=generator)
                           for _ in noises)
        else:
            seeds = [draw_seed(like.device, generator) for _ in noises]
            seed = seeds[0] if len(seeds) == 1 else torch.stack(seeds)
    return op(*head, *noises, seed, *tail)


def _schedule(schedule) -> Schedule:
    return _checks.instance("schedule", schedule, Schedule, "a fastddgan.Schedule")


def _affine(kind: str, a, b, t, schedule, noise, generator, seed=None) -> torch.Tensor:
    table = schedule.kernel_table(kind, compute_dtype(a.dtype), a.device)
    return _run(_library.affine_noise, a, (a, b, t, table), (noise,), seed, generator)


def normal(shape, seed: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise of ``shape`` (batch first) from the Philox stream of ``seed`` = [key, sample_offset]
    on ``seed``'s device: sample ``b`` gets the stream of sample ``b + sample_offset``, as in the fused ops.

    out = 0 a + 1 noise through the fused affine op, with ``a`` a cached zero expanded to ``shape`` (the kernels
    read an expanded scalar in place): nothing of the output's size is allocated or read besides the output."""
    seed = _checks.seed(seed, None)
    shape = tuple(int(v) for v in shape)
    if len(shape) < 1 or min(shape) < 0:
        raise ValueError(f"shape: expected a batch-first shape of non-negative sizes, got {shape}")
    if dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"dtype: expected a floating-point dtype, got {dtype}")
    table, zero, step = _unit_noise(dtype, seed.device)
    zero = zero.expand(shape)
    return _run(_library.affine_noise, zero, (zero, None, step.expand(shape[0]), table), (None,), seed, None)


_UNIT_NOISE = {}


def _unit_noise(dtype, device):
    """(table, zero, step) of :func:`normal`, cached per (dtype, device): the one-column table (0, 0, 1) in the
    compute dtype, a one-element zero of ``dtype`` and a one-element int64 timestep 0."""
    key = (dtype, device)
    if key not in _UNIT_NOISE:
        # built on the host and copied (complete on return, whatever stream reads them first), outside inference
        # mode (usable by autograd after a first call while sampling)
        with torch.inference_mode(False):
            _UNIT_NOISE[key] = (torch.tensor([[0.0], [0.0], [1.0]], dtype=compute_dtype(dtype)).to(device),
                                torch.zeros(1, dtype=dtype).to(device), torch.zeros(1, dtype=torch.int64).to(device))
    return _UNIT_NOISE[key]


def q_sample(x0: torch.Tensor, t, schedule, noise: Optional[torch.Tensor] = None,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """x_t ~ q(x_t | x0) = N(sqrt(alphas_cumprod[t]) x0, (1 - alphas_cumprod[t]) I)."""
    schedule = _schedule(schedule)
    x0 = _checks.data("x0", x0)
    t = _checks.timesteps(t, x0.shape[0], x0.device, schedule.T)
    noise = None if noise is None else _checks.data("noise", noise, like=x0)
    generator = _checks.generator(generator, x0.device)
    return _affine("q_sample", x0, None, t, schedule, noise, generator)


def q_sample_pairs(x0: torch.Tensor, t, schedule, generator: Optional[torch.Generator] = None,
                   noise: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """A true pair (x_{t-1}, x_t) ~ q(x_{t-1}, x_t | x0), the discriminator's real input.

    x_{t-1} ~ q(x_{t-1} | x0) (x0 itself at t == 0), then x_t = sqrt(alphas[t]) x_{t-1} + sqrt(betas[t]) eps, both
    in one pass (one fused op; x_t from x_{t-1} as returned). ``noise=(noise_prev, noise_step)`` makes it
    deterministic. Without it, the fused backends draw two Philox keys from ``generator``, one per noise, in that
    order (the ``torch`` backend two ``torch.randn`` tensors).
    """
    schedule = _schedule(schedule)
    x0 = _checks.data("x0", x0)
    t = _checks.timesteps(t, x0.shape[0], x0.device, schedule.T)
    generator = _checks.generator(generator, x0.device)
    if noise is None:
        noise_prev = noise_step = None
    else:
        if not isinstance(noise, (tuple, list)) or len(noise) != 2:
            raise TypeError("noise: expected a pair (noise_prev, noise_step) of tensors shaped like x0, or None")
        noise_prev = _checks.data("noise[0]", noise[0], like=x0)
        noise_step = _checks.data("noise[1]", noise[1], like=x0)
    table = schedule.kernel_table("q_pair", compute_dtype(x0.dtype), x0.device)
    return _run(_library.q_sample_pairs, x0, (x0, t, table), (noise_prev, noise_step), None, generator)


def posterior_sample(x0: torch.Tensor, x_t: torch.Tensor, t, schedule, generator: Optional[torch.Generator] = None,
                     noise: Optional[torch.Tensor] = None, seed: Optional[torch.Tensor] = None) -> torch.Tensor:
    """x_{t-1} ~ q(x_{t-1} | x_t, x0) = N(coef1[t] x0 + coef2[t] x_t, posterior_variance[t] I), fused.

    One pass reads x0 and x_t, draws the noise in-kernel and writes x_{t-1} (x0 itself at t == 0).
    Differentiable with respect to x0 and x_t (gradients coef1[t] and coef2[t]). ``seed`` (an int64 tensor
    [key, sample_offset] on x0's device) selects the Philox stream explicitly instead of drawing a key from
    ``generator`` (samplers use it for chunk- and graph-independent results).
    """
    schedule = _schedule(schedule)
    x0 = _checks.data("x0", x0)
    x_t = _checks.data("x_t", x_t, like=x0)
    t = _checks.timesteps(t, x0.shape[0], x0.device, schedule.T)
    noise = None if noise is None else _checks.data("noise", noise, like=x0)
    seed = _checks.seed(seed, x0.device, noise)
    generator = _checks.generator(generator, x0.device)
    return _affine("posterior", x0, x_t, t, schedule, noise, generator, seed)


def ddpm_step(eps: torch.Tensor, x_t: torch.Tensor, t, schedule, generator: Optional[torch.Generator] = None,
              variance: str = "small", clip_x0: bool = True, noise: Optional[torch.Tensor] = None,
              seed: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One fused DDPM ancestral step from an eps prediction: x_t -> x_{t-1}.

    x0 = (x_t - sqrt(1 - alphas_cumprod[t]) eps) / sqrt(alphas_cumprod[t]), clipped to [-1, 1] if ``clip_x0``,
    then x_{t-1} = coef1[t] x0 + coef2[t] x_t + sigma_t z with sigma_t^2 = posterior_variance[t] ("small") or
    betas[t] ("large"); no noise at t == 0. Differentiable with respect to eps, x_t and noise (a clipped x0 passes
    no gradient, as with torch.clamp). ``seed`` as in posterior_sample.
    """
    schedule = _schedule(schedule)
    eps = _checks.data("eps", eps)
    x_t = _checks.data("x_t", x_t, like=eps, like_name="eps")
    t = _checks.timesteps(t, eps.shape[0], eps.device, schedule.T, of="eps")
    variance = _checks.choice("variance", variance, ("small", "large"))
    noise = None if noise is None else _checks.data("noise", noise, like=eps, like_name="eps")
    seed = _checks.seed(seed, eps.device, noise)
    generator = _checks.generator(generator, eps.device)
    table = schedule.kernel_table(f"ddpm_{variance}", compute_dtype(eps.dtype), eps.device)
    return _run(_library.ddpm_step, eps, (eps, x_t, t, table), (noise,), seed, generator, (bool(clip_x0),))
