"""What a user would run instead of fastddgan's fused posterior draw and DDPM step, for bench_contenders.py.

Each contender is a zero-argument callable returning x_{t-1}, built by :func:`make_call` from one op's inputs:

* ``fastddgan``: ``ops.posterior_sample`` / ``ops.ddpm_step`` with the noise drawn in-kernel (Philox + Box-Muller);
* ``fastddgan noise=``: the same op with the noise given (an op that only reads and writes memory);
* ``reference``: the formulation of the DDGAN reference implementation, written here from the papers' equations
  (DDGAN's posterior q(x_{t-1} | x_t, x0), DDPM's ancestral step) in eager torch: coefficients gathered per sample
  and reshaped to broadcast, ``torch.randn_like`` for the noise, ``mean + nonzero_mask * exp(0.5 * log_var) * z``;
* ``compile (randn inside)``: that function under ``torch.compile`` (inductor draws the normals itself);
* ``randn + compile(noise)``: eager ``torch.randn_like``, then a ``torch.compile``'d kernel that takes the noise;
* ``compile(noise) given``: that compiled kernel alone, the noise drawn beforehand (to set against
  ``fastddgan noise=``);
* ``diffusers``: ``diffusers.DDPMScheduler.step`` (DDPM step only; optional, the case skips without diffusers);
* ``copy (limit)``: ``dst.copy_(src)`` moving the op's bytes (read 1.5 N floats, write 1.5 N floats), the memory
  limit of an op that reads two tensors of N floats and writes one;
* ``noise (limit)``: ``ops.normal`` of the op's N normals (bench_noise's call), the cost of the in-kernel noise alone.

The compiled contenders use ``dynamic=False`` (one specialised kernel per shape, as a user's fixed-shape loop gets).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import torch

import fastddgan
from fastddgan import ops

from bench_noise import _call as noise_call

OPS = ("posterior_sample", "ddpm_step")
REFERENCE = "reference"
COMPILED = ("compile (randn inside)", "randn + compile(noise)", "compile(noise) given")
LIMITS = ("copy (limit)", "noise (limit)")
_COMMON = ("fastddgan", "fastddgan noise=", REFERENCE) + COMPILED
CONTENDERS: Dict[str, Tuple[str, ...]] = {
    "posterior_sample": _COMMON + LIMITS,
    "ddpm_step": _COMMON + ("diffusers",) + LIMITS,
}
DDGAN_T = 4
DDPM_T = 1000
DDPM_STEP_T = 500  # the DDPM step's timestep, the same for the whole batch (diffusers' step takes one int)
TENSORS_MOVED = 3  # two inputs read, one output written


# ---------------------------------------------------------------- the reference formulation (from the equations)
def _per_sample(coef: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """coef[t] shaped (B, 1, ..., 1) to broadcast over a batch of ``ndim``-dimensional samples."""
    return coef[t].reshape((t.shape[0],) + (1,) * (ndim - 1))


def _add_noise(mean: torch.Tensor, t: torch.Tensor, log_var: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    nonzero = (1.0 - (t == 0).to(mean.dtype)).reshape((t.shape[0],) + (1,) * (mean.dim() - 1))
    return mean + nonzero * torch.exp(0.5 * _per_sample(log_var, t, mean.dim())) * noise


def posterior_formula(x0, x_t, t, coefs, noise):
    """x_{t-1} = coef1[t] x0 + coef2[t] x_t + [t > 0] sigma_t z, sigma_t^2 the posterior variance."""
    coef1, coef2, log_var = coefs
    mean = _per_sample(coef1, t, x0.dim()) * x0 + _per_sample(coef2, t, x0.dim()) * x_t
    return _add_noise(mean, t, log_var, noise)


def posterior_reference(x0, x_t, t, coefs):
    return posterior_formula(x0, x_t, t, coefs, torch.randn_like(x_t))


def ddpm_formula(eps, x_t, t, coefs, noise):
    """x0 = x_t / sqrt(abar_t) - sqrt(1 / abar_t - 1) eps clipped to [-1, 1], then the posterior draw from x0."""
    recip, recipm1, coef1, coef2, log_var = coefs
    x0 = (_per_sample(recip, t, x_t.dim()) * x_t - _per_sample(recipm1, t, x_t.dim()) * eps).clamp(-1.0, 1.0)
    mean = _per_sample(coef1, t, x_t.dim()) * x0 + _per_sample(coef2, t, x_t.dim()) * x_t
    return _add_noise(mean, t, log_var, noise)


def ddpm_reference(eps, x_t, t, coefs):
    return ddpm_formula(eps, x_t, t, coefs, torch.randn_like(x_t))


def reference_coefs(op: str, schedule: fastddgan.Schedule, dtype=torch.float32) -> Tuple[torch.Tensor, ...]:
    """The schedule's coefficients as the reference keeps them: tensors of the data dtype, indexed by t."""
    s = schedule
    if op == "posterior_sample":
        coefs = (s.posterior_mean_coef1, s.posterior_mean_coef2, s.posterior_log_variance_clipped)
    else:
        coefs = ((1.0 / s.alphas_cumprod).sqrt(), (1.0 / s.alphas_cumprod - 1.0).sqrt(), s.posterior_mean_coef1,
                 s.posterior_mean_coef2, s.posterior_log_variance_clipped)
    return tuple(c.to(dtype) for c in coefs)


_FORMULAS = {"posterior_sample": (posterior_formula, posterior_reference), "ddpm_step": (ddpm_formula, ddpm_reference)}
_COMPILED: Dict[Tuple[str, str], Callable] = {}


def compiled(op: str, contender: str) -> Callable:
    """The op's formula under torch.compile: with the noise drawn inside, or taking it as an argument."""
    key = (op, contender)
    if key not in _COMPILED:
        formula, reference = _FORMULAS[op]
        _COMPILED[key] = torch.compile(reference if contender == COMPILED[0] else formula, dynamic=False)
    return _COMPILED[key]


# ---------------------------------------------------------------- inputs and calls
def schedule_of(op: str) -> fastddgan.Schedule:
    return fastddgan.Schedule.ddgan(DDGAN_T) if op == "posterior_sample" else fastddgan.Schedule.linear(DDPM_T)


def inputs(op: str, shape) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x0, x_t, t) for the posterior (t drawn per sample, t == 0 included), (eps, x_t, t) for the DDPM step."""
    gen = torch.Generator().manual_seed(1234)
    a, b = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    if op == "posterior_sample":
        t = torch.randint(0, DDGAN_T, (shape[0],), generator=gen)
    else:
        t = torch.full((shape[0],), DDPM_STEP_T, dtype=torch.long)
    return a, b, t


def diffusers_scheduler():
    """diffusers' DDPM scheduler with the schedule and options of ``ops.ddpm_step``'s defaults; None without it."""
    try:
        from diffusers import DDPMScheduler
    except ImportError:
        return None
    return DDPMScheduler(num_train_timesteps=DDPM_T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                         variance_type="fixed_small", clip_sample=True, clip_sample_range=1.0,
                         prediction_type="epsilon")


def numel_of(shape) -> int:
    numel = 1
    for n in shape:
        numel *= n
    return numel


def make_call(op: str, contender: str, shape) -> Optional[Callable[[], torch.Tensor]]:
    """The contender's zero-argument call on the op's inputs at ``shape`` (fp32 CPU); None when it is unavailable
    (diffusers not installed)."""
    a, b, t = inputs(op, shape)
    schedule = schedule_of(op)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(99))
    fused = ops.posterior_sample if op == "posterior_sample" else ops.ddpm_step
    if contender == "fastddgan":
        return lambda: fused(a, b, t, schedule)
    if contender == "fastddgan noise=":
        return lambda: fused(a, b, t, schedule, noise=noise)
    coefs = reference_coefs(op, schedule)
    if contender == REFERENCE:
        reference = _FORMULAS[op][1]
        return lambda: reference(a, b, t, coefs)
    if contender == COMPILED[0]:
        fn = compiled(op, contender)
        return lambda: fn(a, b, t, coefs)
    if contender == COMPILED[1]:
        fn = compiled(op, contender)
        return lambda: fn(a, b, t, coefs, torch.randn_like(b))
    if contender == COMPILED[2]:
        fn = compiled(op, COMPILED[1])
        return lambda: fn(a, b, t, coefs, noise)
    if contender == "diffusers":
        scheduler = diffusers_scheduler()
        if scheduler is None:
            return None
        gen = torch.Generator().manual_seed(0)
        step = int(t[0])
        return lambda: scheduler.step(a, step, b, generator=gen, return_dict=False)[0]
    if contender == "copy (limit)":
        numel = numel_of(shape)
        src = torch.randn(TENSORS_MOVED * numel // 2, generator=torch.Generator().manual_seed(0))
        dst = torch.empty_like(src)
        return lambda: dst.copy_(src)
    if contender == "noise (limit)":
        return noise_call("fastddgan", shape)
    raise ValueError(f"unknown contender {contender!r}")


def cases(shapes: List[Tuple[int, ...]]) -> List[Tuple[str, Tuple[int, ...], str]]:
    return [(op, shape, contender) for op in OPS for shape in shapes for contender in CONTENDERS[op]]
