"""The single registration point of fastddgan's fused ops (``torch.ops.fastddgan.*``).

Each op is declared once here with ``torch.library.custom_op``, with a fake (meta) kernel so that
``torch.compile(fullgraph=True)`` traces it without graph breaks, and an autograd formula where it is
differentiable. At run time the op routes to the selected backend's kernel (``_backends.select``).

    affine_noise(a, b?, t, table, noise?, seed?) -> out
        out = table[0, t] a + table[1, t] b + table[2, t] noise          (per sample; b optional)
    ddpm_step(eps, x_t, t, table, noise?, seed?, clip_x0) -> out
        x0 = table[0, t] x_t - table[1, t] eps (clipped to [-1, 1]),
        out = table[2, t] x0 + table[3, t] x_t + table[4, t] noise

``t`` is int64 of shape (B,), ``table`` is (rows, T) in the compute dtype (float64 for float64 data, float32
otherwise). Exactly one of ``noise`` (explicit, same shape as ``a``) and ``seed`` (int64 tensor holding a 64-bit
Philox key, see ``philox.py``) is given.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import _backends, reference
from .philox import philox_normal


class _TorchKernels:
    """The ops in plain PyTorch, drawing in-kernel noise from the reference Philox stream."""

    @staticmethod
    def _noise(like: Tensor, noise: Optional[Tensor], seed: Optional[Tensor]) -> Tensor:
        return noise if noise is not None else philox_normal(seed, like.numel(), like.device).view(like.shape)

    @staticmethod
    def affine_noise(a, b, t, table, noise, seed):
        return reference.affine_noise(a, b, t, table, _TorchKernels._noise(a, noise, seed))

    @staticmethod
    def ddpm_step(eps, x_t, t, table, noise, seed, clip_x0):
        return reference.ddpm_step(eps, x_t, t, table, _TorchKernels._noise(eps, noise, seed), clip_x0)


def _kernels(device: torch.device):
    name = _backends.select(device)
    return _TorchKernels if name == "torch" else _backends.module(name)


@torch.library.custom_op("fastddgan::affine_noise", mutates_args=())
def affine_noise(a: Tensor, b: Optional[Tensor], t: Tensor, table: Tensor, noise: Optional[Tensor],
                 seed: Optional[Tensor]) -> Tensor:
    return _kernels(a.device).affine_noise(a, b, t, table, noise, seed)


@affine_noise.register_fake
def _affine_noise_fake(a, b, t, table, noise, seed):
    return torch.empty_like(a, memory_format=torch.contiguous_format)


def _affine_noise_setup(ctx, inputs, output):
    _, b, t, table, noise, _ = inputs
    ctx.save_for_backward(t, table)
    ctx.has_b, ctx.has_noise = b is not None, noise is not None


def _affine_noise_backward(ctx, grad):
    t, table = ctx.saved_tensors

    def scaled(row):  # d out / d input = table[row, t] per sample
        return (reference.per_sample(table[row], t, grad) * grad).to(grad.dtype)

    return (scaled(0), scaled(1) if ctx.has_b else None, None, None, scaled(2) if ctx.has_noise else None, None)


affine_noise.register_autograd(_affine_noise_backward, setup_context=_affine_noise_setup)


@torch.library.custom_op("fastddgan::ddpm_step", mutates_args=())
def ddpm_step(eps: Tensor, x_t: Tensor, t: Tensor, table: Tensor, noise: Optional[Tensor], seed: Optional[Tensor],
              clip_x0: bool) -> Tensor:
    return _kernels(eps.device).ddpm_step(eps, x_t, t, table, noise, seed, clip_x0)


@ddpm_step.register_fake
def _ddpm_step_fake(eps, x_t, t, table, noise, seed, clip_x0):
    return torch.empty_like(x_t, memory_format=torch.contiguous_format)
