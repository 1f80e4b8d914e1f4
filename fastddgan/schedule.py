"""Noise schedules for DDPM and DDGAN.

Index convention (used everywhere in fastddgan)
-----------------------------------------------
``t`` is 0-based in ``[0, T)``. ``x_t`` is the sample whose signal level is ``alphas_cumprod[t]``:

    q(x_t | x0) = N(sqrt(alphas_cumprod[t]) x0, (1 - alphas_cumprod[t]) I)

and one forward step goes from level ``t-1`` to level ``t``:

    q(x_t | x_{t-1}) = N(sqrt(alphas[t]) x_{t-1}, betas[t] I),   with x_{-1} := x0.

The reverse (posterior) step at index ``t`` turns ``x_t`` into the sample at level ``t-1``:

    q(x_{t-1} | x_t, x0) = N(posterior_mean_coef1[t] x0 + posterior_mean_coef2[t] x_t, posterior_variance[t] I)

At ``t == 0`` it returns the clean sample: ``posterior_variance[0] == 0``, ``coef1[0] == 1``, ``coef2[0] == 0``.
This is the convention of diffusers and of the DDGAN reference code.

All tables are float64 tensors of length ``T`` computed in float64; ``Schedule.to(device)`` moves them.
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch

from . import _checks

__all__ = ["Schedule"]

_TABLE_NAMES = (
    "betas",
    "alphas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)

# Rows of the small coefficient tables the fused kernels read, one column per timestep.
# "affine" kernels compute   out = row0[t] * a + row1[t] * b + row2[t] * noise.
# "ddpm" kernels compute     x0 = row0[t] * x_t - row1[t] * eps (optionally clipped), then
#                            out = row2[t] * x0 + row3[t] * x_t + row4[t] * noise.
_KERNEL_TABLES = {
    "posterior": ("posterior_mean_coef1", "posterior_mean_coef2", "posterior_std"),
    "q_sample": ("sqrt_alphas_cumprod", "zeros", "sqrt_one_minus_alphas_cumprod"),
    "q_prev": ("sqrt_alphas_cumprod_prev", "zeros", "sqrt_one_minus_alphas_cumprod_prev"),
    "q_step": ("sqrt_alphas", "zeros", "sqrt_betas"),
    "q_pair": ("sqrt_alphas_cumprod_prev", "sqrt_one_minus_alphas_cumprod_prev", "sqrt_alphas", "sqrt_betas"),
    "ddpm_small": ("sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_mean_coef1",
                   "posterior_mean_coef2", "posterior_std"),
    "ddpm_large": ("sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_mean_coef1",
                   "posterior_mean_coef2", "large_std"),
}


class Schedule:
    """A discrete diffusion noise schedule of ``T`` steps (see the module docstring for the index convention).

    Build one with :meth:`linear`, :meth:`cosine`, :meth:`ddgan` or :meth:`from_betas`; :meth:`respace` keeps a
    subset of the steps. ``timesteps[t]`` is the index of step ``t`` in the schedule this one was respaced from
    (``arange(T)`` for a schedule that was not respaced): feed it to a network trained on the original schedule.
    """

    def __init__(self, betas: torch.Tensor, timesteps: torch.Tensor | None = None, name: str = "custom"):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.dim() != 1 or betas.numel() < 1:
            raise ValueError(f"betas: expected a 1-D tensor with T >= 1 entries, got shape {tuple(betas.shape)}")
        bad = ~((betas > 0) & (betas < 1))  # NaN fails both
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(f"betas: expected finite numbers in (0, 1), got betas[{i}] = {betas[i].item()}")
        T = betas.numel()
        if timesteps is None:
            timesteps = torch.arange(T, device=betas.device)
        timesteps = torch.as_tensor(timesteps, dtype=torch.long, device=betas.device)
        if timesteps.shape != (T,):
            raise ValueError(f"timesteps: expected shape ({T},), got {tuple(timesteps.shape)}")
        self.name = name
        self.T = T
        self.timesteps = timesteps
        alphas = 1.0 - betas
        ab = torch.cumprod(alphas, 0)
        if bool(ab[0] == 1):
            raise ValueError(f"betas: betas[0] = {betas[0].item()} is too small: 1 - betas[0] rounds to 1 in float64, "
                             f"and the tables would divide by zero")
        if bool(ab[-1] == 0):
            t = int((ab == 0).nonzero()[0])
            raise ValueError(f"betas: alphas_cumprod (the product of 1 - betas) underflows to 0 at t = {t}, and the "
                             f"tables would divide by zero; use fewer or smaller betas")
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        self.betas = betas
        self.alphas = alphas
        self.alphas_cumprod = ab
        self.alphas_cumprod_prev = ab_prev
        self.sqrt_alphas_cumprod = ab.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - ab).sqrt()
        self.posterior_variance = betas * (1.0 - ab_prev) / (1.0 - ab)
        # log of the variance with the t == 0 entry (exactly 0) replaced by the t == 1 entry, as in DDPM.
        clipped = torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]]) if T > 1 else None
        self.posterior_log_variance_clipped = (
            clipped.log() if clipped is not None else self.posterior_variance.clamp(min=1e-20).log()
        )
        self.posterior_mean_coef1 = betas * ab_prev.sqrt() / (1.0 - ab)
        self.posterior_mean_coef2 = (1.0 - ab_prev) * alphas.sqrt() / (1.0 - ab)
        self._kernel_cache: Dict[Tuple[str, torch.dtype, torch.device], torch.Tensor] = {}

    # ------------------------------------------------------------------ constructors
    @staticmethod
    def _check_T(T) -> int:
        return _checks.integer("T", T, 1)

    @classmethod
    def from_betas(cls, betas, name: str = "custom") -> "Schedule":
        """A schedule with the given betas: finite, in (0, 1), with finite tables (see the checks in __init__)."""
        return cls(torch.as_tensor(betas, dtype=torch.float64), name=name)

    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "Schedule":
        """DDPM (Ho et al. 2020): betas evenly spaced from ``beta_start`` to ``beta_end``."""
        T = cls._check_T(T)
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(f"beta_start, beta_end: expected 0 < beta_start <= beta_end < 1, "
                             f"got {beta_start}, {beta_end}")
        return cls(torch.linspace(beta_start, beta_end, T, dtype=torch.float64), name=f"linear{T}")

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999, power: float = 1.0) -> "Schedule":
        """Nichol & Dhariwal 2021: alpha_bar_t = f(t / T) / f(0), f(u) = cos^2((u^power + s) / (1 + s) * pi / 2),
        betas capped at ``max_beta``. ``power`` = 1 is the paper's; ``power`` > 1 makes the last reverse steps
        (small t) smaller: x_t's noise in data units, sigma_t = sqrt(1 / alpha_bar_t - 1), is about
        tan(pi / 2 * (t / T)^power); at T = 4, t = 1, 2, 3: 0.43 / 1.01 / 2.44 (power 1), 0.30 / 0.79 / 1.97 (1.25),
        0.21 / 0.63 / 1.65 (1.5)."""
        T = cls._check_T(T)
        if not 0 < max_beta < 1 or not s >= 0:
            raise ValueError(f"s, max_beta: expected s >= 0 and 0 < max_beta < 1, got {s}, {max_beta}")
        if not (isinstance(power, (int, float)) and math.isfinite(power) and power > 0):
            raise ValueError(f"power: expected a finite number > 0, got {power!r}")
        u = (torch.arange(T + 1, dtype=torch.float64) / T) ** power
        f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1.0 - f[1:] / f[:-1]).clamp(max=max_beta)
        return cls(betas, name=f"cosine{T}" if power == 1 else f"cosine{T}-p{power:g}")

    @classmethod
    def ddgan(cls, T: int = 4, beta_min: float = 0.1, beta_max: float = 20.0) -> "Schedule":
        """DDGAN's few-step schedule (Xiao et al. 2022), the discretised VP-SDE.

        alpha_bar(s) = exp(-s^2 (beta_max - beta_min) / 2 - s beta_min), s_i = i / T (1 - 1e-3) + 1e-3 for
        i = 0..T, and beta_i = 1 - alpha_bar(s_i) / alpha_bar(s_{i-1}) for i = 1..T (stored 0-based).
        """
        T = cls._check_T(T)
        if not 0 < beta_min < beta_max:
            raise ValueError(f"beta_min, beta_max: expected 0 < beta_min < beta_max, got {beta_min}, {beta_max}")
        s = torch.arange(T + 1, dtype=torch.float64) / T * (1.0 - 1e-3) + 1e-3
        log_ab = -0.5 * s**2 * (beta_max - beta_min) - s * beta_min
        betas = -torch.expm1(log_ab[1:] - log_ab[:-1])
        return cls(betas, name=f"ddgan{T}")

    def respace(self, k: int) -> "Schedule":
        """A ``k``-step schedule that keeps ``k`` evenly spaced steps (always the first and the last).

        Betas are recomputed from the kept ``alphas_cumprod`` so that ``alphas_cumprod`` of every kept step is
        unchanged; ``timesteps`` maps the new steps to the indices of this schedule's steps.
        """
        _checks.integer("k", k, 1, self.T, expected=f"an integer in [1, T={self.T}]")
        keep = torch.linspace(0, self.T - 1, k, dtype=torch.float64).round().long().to(self.betas.device)
        if k == 1:
            keep = keep.new_full((1,), self.T - 1)
        ab = self.alphas_cumprod[keep]
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        return Schedule(1.0 - ab / ab_prev, timesteps=self.timesteps[keep], name=f"{self.name}/respace{k}")

    # ------------------------------------------------------------------ utilities
    @property
    def device(self) -> torch.device:
        return self.betas.device

    def __len__(self) -> int:
        return self.T

    def __repr__(self) -> str:
        return f"Schedule({self.name}, T={self.T}, device={self.device})"

    def to(self, device) -> "Schedule":
        """A copy of this schedule with every table on ``device``."""
        device = torch.device(device)
        if device == self.device:
            return self
        out = Schedule.__new__(Schedule)
        out.__dict__.update({k: (v.to(device) if isinstance(v, torch.Tensor) else v)
                             for k, v in self.__dict__.items() if k != "_kernel_cache"})
        out._kernel_cache = {}
        return out

    def _derived(self, name: str) -> torch.Tensor:
        if name == "zeros":
            return torch.zeros_like(self.betas)
        if name == "posterior_std":
            return self.posterior_variance.sqrt()
        if name == "large_std":  # sigma_t^2 = beta_t, no noise at the last step (t == 0)
            return torch.cat([self.betas.new_zeros(1), self.betas[1:].sqrt()])
        if name == "sqrt_alphas_cumprod_prev":
            return self.alphas_cumprod_prev.sqrt()
        if name == "sqrt_one_minus_alphas_cumprod_prev":
            return (1.0 - self.alphas_cumprod_prev).sqrt()
        if name == "sqrt_alphas":
            return self.alphas.sqrt()
        if name == "sqrt_betas":
            return self.betas.sqrt()
        if name == "sqrt_recip_alphas_cumprod":
            return self.alphas_cumprod.rsqrt()
        if name == "sqrt_recipm1_alphas_cumprod":
            return (1.0 / self.alphas_cumprod - 1.0).sqrt()
        return getattr(self, name)

    def kernel_table(self, kind: str, dtype: torch.dtype, device) -> torch.Tensor:
        """The (rows, T) coefficient table a fused kernel reads, cached per (kind, dtype, device).

        ``dtype`` is the kernel's compute type (float64 for float64 data, float32 otherwise). Tables are built once
        and reused, so a sampling loop moves nothing between host and device after its first step.
        """
        table = self._kernel_cache.get((kind, dtype, device))  # a call's own device object: no normalising
        if table is not None:
            return table
        device = _checks.device(device)
        key = (kind, dtype, device)
        table = self._kernel_cache.get(key)
        if table is None:
            # built outside inference mode: a table first made while sampling (fastddgan.sample runs under
            # torch.inference_mode) must still be usable by a later training step's autograd
            with torch.inference_mode(False):
                rows = [self._derived(name) for name in _KERNEL_TABLES[kind]]
                table = torch.stack(rows).to(device=device, dtype=dtype).contiguous()
            self._kernel_cache[key] = table
        return table

    def tables(self) -> Dict[str, torch.Tensor]:
        """All public float64 tables by name."""
        return {name: getattr(self, name) for name in _TABLE_NAMES}
