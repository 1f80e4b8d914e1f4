"""The single registration point of fastddgan's fused ops (``torch.ops.fastddgan.*``).

Each op is declared once here with ``torch.library.custom_op``, with a fake (meta) kernel so that
``torch.compile(fullgraph=True)`` traces it without graph breaks, and an autograd formula where it is
differentiable. At run time the op routes to the selected backend's kernel (``_backends.select``).

    affine_noise(a, b?, t, table, noise?, seed?) -> out
        out = table[0, t] a + table[1, t] b + table[2, t] noise          (per sample; b optional)
    ddpm_step(eps, x_t, t, table, noise?, seed?, clip_x0) -> out
        x0 = table[0, t] x_t - table[1, t] eps (clipped to [-1, 1]; NaN stays NaN),
        out = table[2, t] x0 + table[3, t] x_t + table[4, t] noise

    gan_loss(real?, fake, kind, part, clamp) -> (loss, grad_real, grad_fake)
        the fused reduction of a GAN objective: mean loss over the batch and its gradient w.r.t. the logits in
        one pass (codes and per-logit terms in ``fastddgan/losses/reference.py``); real only for the
        discriminator part. Outputs in float32 (float64 for float64 logits). Backward multiplies the saved
        per-logit gradients by the incoming gradient (under create_graph it recomputes them differentiably with
        the reference, so double backward is exact too).

``t`` is int64 of shape (B,), ``table`` is (rows, T) in the compute dtype (float64 for float64 data, float32
otherwise). Exactly one of ``noise`` (explicit, same shape as ``a``) and ``seed`` (int64 tensor
``[key, sample_offset]``: the Philox key and the index of the call's first sample, see ``philox.py``) is given.
Outputs are contiguous. The ops range-check CPU ``t`` themselves (a ValueError), also inside compiled graphs.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from . import _backends, _validate, reference
from .philox import philox_normal


class _TorchKernels:
    """The ops in plain PyTorch, drawing in-kernel noise from the reference Philox stream; the outputs are
    contiguous, as the ops declare (the reference keeps its inputs' memory format, e.g. channels_last)."""

    @staticmethod
    def _noise(like: Tensor, noise: Optional[Tensor], seed: Optional[Tensor]) -> Tensor:
        if noise is not None:
            return noise
        batch = like.shape[0]
        return philox_normal(seed, batch, like.numel() // max(batch, 1), like.device).view(like.shape)

    @staticmethod
    def affine_noise(a, b, t, table, noise, seed):
        out = reference.affine_noise(a, b, t, table, _TorchKernels._noise(a, noise, seed))
        return out.contiguous()

    @staticmethod
    def ddpm_step(eps, x_t, t, table, noise, seed, clip_x0):
        out = reference.ddpm_step(eps, x_t, t, table, _TorchKernels._noise(eps, noise, seed), clip_x0)
        return out.contiguous()

    @staticmethod
    def gan_loss(real, fake, kind, part, clamp):
        from ..losses import reference as loss_reference  # lazy: fastddgan.losses imports this module

        return loss_reference.gan_loss(real, fake, kind, part, clamp)


def _kernels(device: torch.device, t: Tensor, table: Tensor):
    """The selected backend's kernels, after the range check of CPU ``t`` (here, in the op, it also runs under
    torch.compile, whose graphs skip the Python-side checks of fastddgan.ops)."""
    if t.device.type == "cpu":
        _validate.timestep_values(t, table.shape[1])
    name = _backends.select(device)
    return _TorchKernels if name == "torch" else _backends.module(name)


@torch.library.custom_op("fastddgan::affine_noise", mutates_args=())
def affine_noise(a: Tensor, b: Optional[Tensor], t: Tensor, table: Tensor, noise: Optional[Tensor],
                 seed: Optional[Tensor]) -> Tensor:
    return _kernels(a.device, t, table).affine_noise(a, b, t, table, noise, seed)


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
    return _kernels(eps.device, t, table).ddpm_step(eps, x_t, t, table, noise, seed, clip_x0)


@ddpm_step.register_fake
def _ddpm_step_fake(eps, x_t, t, table, noise, seed, clip_x0):
    return torch.empty_like(x_t, memory_format=torch.contiguous_format)


@torch.library.custom_op("fastddgan::gan_loss", mutates_args=())
def gan_loss(real: Optional[Tensor], fake: Tensor, kind: int, part: int,
             clamp: float) -> Tuple[Tensor, Tensor, Tensor]:
    name = _backends.select(fake.device)
    return (_TorchKernels if name == "torch" else _backends.module(name)).gan_loss(real, fake, kind, part, clamp)


def _ddpm_step_setup(ctx, inputs, output):
    eps, x_t, t, table, noise, _, clip_x0 = inputs
    ctx.clip_x0, ctx.has_noise = clip_x0, noise is not None
    ctx.save_for_backward(eps if clip_x0 else None, x_t if clip_x0 else None, t, table)


def _ddpm_step_backward(ctx, grad):
    """d out / d x_t = table[0, t] table[2, t] m + table[3, t], d out / d eps = -table[1, t] table[2, t] m and
    d out / d noise = table[4, t], where m = 1 except where clip_x0 clipped x0 (m = 0 outside [-1, 1], as for
    torch.clamp): the gradients of the reference, in which a clipped x0 is a constant."""
    eps, x_t, t, table = ctx.saved_tensors
    g = grad.to(table.dtype)

    def row(r):
        return reference.per_sample(table[r], t, grad)

    grad_x0 = row(2) * g
    if ctx.clip_x0:
        x0 = row(0) * x_t.to(table.dtype) - row(1) * eps.to(table.dtype)
        grad_x0 = torch.where((x0 >= -1.0) & (x0 <= 1.0), grad_x0, torch.zeros_like(grad_x0))
    need_eps, need_x_t, need_noise = ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[4]
    return (-(row(1) * grad_x0).to(grad.dtype) if need_eps else None,
            (row(0) * grad_x0 + row(3) * g).to(grad.dtype) if need_x_t else None, None, None,
            (row(4) * g).to(grad.dtype) if need_noise and ctx.has_noise else None, None, None)


ddpm_step.register_autograd(_ddpm_step_backward, setup_context=_ddpm_step_setup)


@gan_loss.register_fake
def _gan_loss_fake(real, fake, kind, part, clamp):
    acc = torch.float64 if fake.dtype == torch.float64 else torch.float32
    n_real = real.shape[0] if real is not None else 0
    return fake.new_empty((), dtype=acc), fake.new_empty((n_real,), dtype=acc), fake.new_empty(fake.shape, dtype=acc)


def _gan_loss_setup(ctx, inputs, output):
    real, fake, kind, part, clamp = inputs
    _, grad_real, grad_fake = output
    ctx.save_for_backward(real, fake, grad_real, grad_fake)
    ctx.args = (kind, part, clamp)
    ctx.mark_non_differentiable(grad_real, grad_fake)


def _gan_loss_backward(ctx, grad, _grad_real_out, _grad_fake_out):
    real, fake, grad_real, grad_fake = ctx.saved_tensors
    kind, part, clamp = ctx.args
    if torch.is_grad_enabled():  # create_graph=True: the per-logit gradients again, differentiably
        from ..losses import reference as loss_reference

        _, grad_real, grad_fake = loss_reference.gan_loss(real, fake, kind, part, clamp)
    need_real, need_fake = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    return ((grad * grad_real).to(real.dtype) if need_real and real is not None else None,
            (grad * grad_fake).to(fake.dtype) if need_fake else None, None, None, None)


gan_loss.register_autograd(_gan_loss_backward, setup_context=_gan_loss_setup)
