"""The Python side of fastddgan's ops (``torch.ops.fastddgan.*``): fake kernels, autograd formulas, the Python backends.

The schemas are declared once, in C++ (``csrc/ops.cpp``, ``TORCH_LIBRARY(fastddgan, m)``), and the compiled
kernels register per dispatch key in their own files (``csrc/cpu``: CPU, ``csrc/cuda``: CUDA), so the ops run from
C++ and in exported programs too. This module, the one named by the schemas' ``set_python_module``, adds:

* a fake (meta) kernel per op (``torch.library.register_fake``), so ``torch.compile(fullgraph=True)`` traces the
  ops without graph breaks;
* the autograd formulas of the differentiable ops (``torch.library.register_autograd``);
* the backend choice: a kernel for the ``BackendSelect`` dispatch key (after autograd, before the CPU/CUDA kernels)
  asks :func:`fastddgan.ops._backends.select` and either passes the call on to the compiled kernel of the tensors'
  device or runs a Python backend (the pure-PyTorch reference or Triton). The choice happens when the op runs, in
  the caller's context, also inside compiled graphs.

    affine_noise(a, b?, t, table, noise?, seed?) -> out
        out = table[0, t] a + table[1, t] b + table[2, t] noise          (per sample; b optional)
    ddpm_step(eps, x_t, t, table, noise?, seed?, clip_x0) -> out
        x0 = table[0, t] x_t - table[1, t] eps (clipped to [-1, 1]; NaN stays NaN),
        out = table[2, t] x0 + table[3, t] x_t + table[4, t] noise
    q_sample_pairs(x0, t, table, noise_prev?, noise_step?, seed?) -> (x_prev, x_t)
        a true pair in one pass: x_prev = table[0, t] x0 + table[1, t] noise_prev,
        x_t = table[2, t] x_prev + table[3, t] noise_step (from x_prev as returned); the noises, or ``seed`` of
        shape (2, 2) whose row i is the [key, sample_offset] of noise i
    gan_loss(real?, fake, kind, part, clamp) -> (loss, grad_real, grad_fake)
        the fused reduction of a GAN objective: mean loss over the batch and its gradient w.r.t. the logits in
        one pass (codes and per-logit terms in ``reference.py``); real only for the discriminator part. Outputs in
        the compute dtype. Backward multiplies the saved per-logit gradients by the incoming gradient (under
        create_graph it recomputes them differentiably with the reference, so double backward is exact too).
    philox_words(counters, key) -> words
        the raw Philox4x32-10 words of counters (N, 4) under the key words (k0, k1) (known-answer tests).

``t`` is int64 of shape (B,), ``table`` is (rows, T) in the compute dtype (float64 for float64 data, float32
otherwise). Exactly one of ``noise`` (explicit, same shape as ``a``) and ``seed`` (int64 tensor
``[key, sample_offset]``: the Philox key and the index of the call's first sample, see ``philox.py``) is given.
Outputs are contiguous. The ops range-check CPU ``t`` themselves (a ValueError), also inside compiled graphs.

Adding an op: ``csrc/README.md``.
"""

from __future__ import annotations

import threading
from typing import Optional

import torch
from torch import Tensor

from .. import _checks
from . import _backends, philox, reference

NAMESPACE = "fastddgan"

# Used only where fastddgan._C (whose csrc/ops.cpp declares the schemas) cannot be imported, so that the package
# still runs on the Python backends; tests/test_build.py checks that these equal the C++ declarations.
FALLBACK_SCHEMAS = {
    "affine_noise": "affine_noise(Tensor a, Tensor? b, Tensor t, Tensor table, Tensor? noise, Tensor? seed) -> Tensor",
    "ddpm_step": "ddpm_step(Tensor eps, Tensor x_t, Tensor t, Tensor table, Tensor? noise, Tensor? seed, "
                 "bool clip_x0) -> Tensor",
    "q_sample_pairs": "q_sample_pairs(Tensor x0, Tensor t, Tensor table, Tensor? noise_prev, Tensor? noise_step, "
                      "Tensor? seed) -> (Tensor, Tensor)",
    "gan_loss": "gan_loss(Tensor? real, Tensor fake, int kind, int part, float clamp) -> (Tensor, Tensor, Tensor)",
    "philox_words": "philox_words(Tensor counters, Tensor key) -> Tensor",
}

_fallback_library = None
if _backends.module("cpp") is None and not hasattr(torch.ops.fastddgan, "affine_noise"):
    _fallback_library = torch.library.Library(NAMESPACE, "DEF")
    for _schema in FALLBACK_SCHEMAS.values():
        _fallback_library.define(_schema)

affine_noise = torch.ops.fastddgan.affine_noise.default
ddpm_step = torch.ops.fastddgan.ddpm_step.default
q_sample_pairs = torch.ops.fastddgan.q_sample_pairs.default
gan_loss = torch.ops.fastddgan.gan_loss.default
philox_words = torch.ops.fastddgan.philox_words.default


class TorchKernels:
    """The ``torch`` backend: the ops in plain PyTorch, drawing in-kernel noise from the reference Philox stream;
    the outputs are contiguous, as the ops declare (the reference keeps its inputs' memory format)."""

    @staticmethod
    def _noise(like: Tensor, noise: Optional[Tensor], seed: Optional[Tensor]) -> Tensor:
        if noise is not None:
            return noise
        batch = like.shape[0]
        return philox.philox_normal(seed, batch, like.numel() // max(batch, 1), like.device).view(like.shape)

    @staticmethod
    def affine_noise(a, b, t, table, noise, seed):
        return reference.affine_noise(a, b, t, table, TorchKernels._noise(a, noise, seed)).contiguous()

    @staticmethod
    def ddpm_step(eps, x_t, t, table, noise, seed, clip_x0):
        return reference.ddpm_step(eps, x_t, t, table, TorchKernels._noise(eps, noise, seed), clip_x0).contiguous()

    @staticmethod
    def q_sample_pairs(x0, t, table, noise_prev, noise_step, seed):
        if noise_prev is None:  # row i of the seed draws noise i
            noise_prev, noise_step = TorchKernels._noise(x0, None, seed[0]), TorchKernels._noise(x0, None, seed[1])
        return tuple(v.contiguous() for v in reference.q_sample_pairs(x0, t, table, noise_prev, noise_step))

    gan_loss = staticmethod(reference.gan_loss)
    philox_words = staticmethod(philox.philox_words)


# ------------------------------------------------------------------------------------------- backend choice

_BELOW_BACKEND_SELECT = torch._C._dispatch_keyset_full_after(torch._C.DispatchKey.BackendSelect)
_router_library = torch.library.Library(NAMESPACE, "IMPL")


def _python_kernels(name: str):
    """The implementation of Python backend ``name``, or None for the compiled ones (registered per dispatch key)."""
    if name == "torch":
        return TorchKernels
    if name == "triton":
        return _backends.module("triton")
    return None


def _check_t(t: Tensor, table: Tensor) -> None:
    """The range check of CPU ``t``, here in the op so that it also holds under torch.compile (whose graphs skip the
    Python-side checks of fastddgan.ops). Kernels clamp unchecked device-side ``t``."""
    if t.device.type == "cpu":
        _checks.timestep_values(t, table.shape[1])


def _route(name: str, device_of, check=None) -> None:
    """Register op ``name``'s BackendSelect kernel: ``check(*args)`` first (if given), then the backend
    ``_backends.select`` chooses for ``device_of(*args)``: a Python one runs here, a compiled one (and any device the
    choice does not cover, e.g. meta) gets the call passed on to the kernel the dispatcher holds below this key."""
    op = getattr(torch.ops.fastddgan, name).default

    def kernel(keyset, *args):
        if check is not None:
            check(*args)
        device = device_of(*args)
        if device.type != "meta":
            python = _python_kernels(_backends.select(device))
            if python is not None:
                return getattr(python, name)(*args)
        return op.redispatch(keyset & _BELOW_BACKEND_SELECT, *args)

    _router_library.impl(name, kernel, "BackendSelect", with_keyset=True)


_route("affine_noise", lambda a, b, t, table, *_: a.device, lambda a, b, t, table, *_: _check_t(t, table))
_route("ddpm_step", lambda eps, x_t, t, table, *_: eps.device, lambda eps, x_t, t, table, *_: _check_t(t, table))
_route("q_sample_pairs", lambda x0, t, table, *_: x0.device, lambda x0, t, table, *_: _check_t(t, table))
_route("gan_loss", lambda real, fake, *_: fake.device)
_route("philox_words", lambda counters, key: counters.device)


# ------------------------------------------------------------------------------------------- direct CPU calls

# The public functions (fastddgan.ops) have checked their arguments and chosen the backend already; on the cpp backend,
# when nothing above the CPU kernel has work to do (see direct_cpu_ok), they call the CPU kernel through the
# dispatcher's handle for the CPU key (redispatch), skipping the Python kernels of autograd and of BackendSelect
# (about 9 µs of a 10 µs call at tiny shapes). Same kernel, same arguments, same result.
_CPU_KEYSET = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)


def direct_cpu_ok(*tensors: Optional[Tensor]) -> bool:
    """Whether a cpp-backend call with these tensors may go straight to the CPU kernel: plain tensors (no subclass:
    fake, functional, user wrappers), no autograd to record (grad mode off or no input requires grad), and no
    layer that must see the op: torch.compile / export tracing, torch.jit tracing, torch function or dispatch
    modes, functorch transforms (vmap, grad)."""
    grad = torch.is_grad_enabled()
    for x in tensors:
        if x is not None and (type(x) is not Tensor or (grad and x.requires_grad)):
            return False
    return not (torch.compiler.is_compiling() or torch._C._len_torch_dispatch_stack()
                or torch._C._len_torch_function_stack() or torch._C._are_functorch_transforms_active()
                or torch._C._get_tracing_state() is not None)


def direct_cpu(op, *args):
    """``op`` (an OpOverload of this library) run by its CPU kernel, skipping the layers above it (only where
    :func:`direct_cpu_ok` says so)."""
    return op.redispatch(_CPU_KEYSET, *args)


class _CpuSeed(threading.local):
    """Per-thread seed tensors for direct CPU calls, [key, 0] and the (2, 2) [[key, 0], [key, 0]] of q_sample_pairs,
    whose keys are redrawn in place for each call (the CPU kernel reads them before returning and keeps nothing): no
    allocation. Made outside inference mode, so that they can be redrawn in and out of it."""

    def __init__(self):
        with torch.inference_mode(False):
            self.seeds = {1: torch.zeros(2, dtype=torch.int64), 2: torch.zeros(2, 2, dtype=torch.int64)}
            self.keys = {1: self.seeds[1][:1], 2: self.seeds[2][:, 0]}


_cpu_seed = _CpuSeed()
SEED_HIGH = 2**63 - 1  # keys are drawn uniformly from [0, 2**63 - 1)


def fresh_cpu_seed(generator: Optional[torch.Generator], count: int = 1) -> Tensor:
    """This thread's CPU seed tensor for ``count`` (1 or 2) noises with new keys drawn from ``generator`` (default:
    torch's CPU generator): the same keys, and the same generator state after them, as ``count`` calls of
    ``fastddgan.ops.draw_seed`` (torch.randint is ``random_(low, high)`` of a new tensor, and the CPU fills the
    elements in order). Valid until the thread's next call; for direct CPU calls only."""
    _cpu_seed.keys[count].random_(0, SEED_HIGH, generator=generator)
    return _cpu_seed.seeds[count]


# ------------------------------------------------------------------------------------------- fake kernels


@torch.library.register_fake("fastddgan::affine_noise")
def _affine_noise_fake(a, b, t, table, noise, seed):
    return torch.empty_like(a, memory_format=torch.contiguous_format)


@torch.library.register_fake("fastddgan::ddpm_step")
def _ddpm_step_fake(eps, x_t, t, table, noise, seed, clip_x0):
    return torch.empty_like(x_t, memory_format=torch.contiguous_format)


@torch.library.register_fake("fastddgan::q_sample_pairs")
def _q_sample_pairs_fake(x0, t, table, noise_prev, noise_step, seed):
    return (torch.empty_like(x0, memory_format=torch.contiguous_format),
            torch.empty_like(x0, memory_format=torch.contiguous_format))


@torch.library.register_fake("fastddgan::gan_loss")
def _gan_loss_fake(real, fake, kind, part, clamp):
    acc = reference.compute_dtype(fake.dtype)
    n_real = real.shape[0] if real is not None else 0
    return fake.new_empty((), dtype=acc), fake.new_empty((n_real,), dtype=acc), fake.new_empty(fake.shape, dtype=acc)


@torch.library.register_fake("fastddgan::philox_words")
def _philox_words_fake(counters, key):
    return torch.empty_like(counters, memory_format=torch.contiguous_format)


# ------------------------------------------------------------------------------------------- autograd


def _affine_noise_setup(ctx, inputs, output):
    _, b, t, table, noise, _ = inputs
    ctx.save_for_backward(t, table)
    ctx.has_b, ctx.has_noise = b is not None, noise is not None


def _affine_noise_backward(ctx, grad):
    t, table = ctx.saved_tensors

    def scaled(row):  # d out / d input = table[row, t] per sample
        return (reference.per_sample(table[row], t, grad) * grad).to(grad.dtype)

    return (scaled(0), scaled(1) if ctx.has_b else None, None, None, scaled(2) if ctx.has_noise else None, None)


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


def _q_sample_pairs_setup(ctx, inputs, output):
    _, t, table, noise_prev, _, _ = inputs
    ctx.save_for_backward(t, table)
    ctx.has_noise = noise_prev is not None


def _q_sample_pairs_backward(ctx, grad_prev, grad_t):
    """The chain of the two affine ops it fuses: the gradient reaching x_prev is grad_prev + table[2, t] grad_t
    (each term in the data dtype, as autograd adds them), then x0 gets table[0, t] times it and noise_prev
    table[1, t] times it, noise_step table[3, t] grad_t."""
    t, table = ctx.saved_tensors

    def scaled(row, grad):
        return (reference.per_sample(table[row], t, grad) * grad).to(grad.dtype)

    if grad_prev is None and grad_t is None:
        return None, None, None, None, None, None
    like = grad_prev if grad_prev is not None else grad_t
    via_prev = grad_prev if grad_prev is not None else torch.zeros_like(like)
    if grad_t is not None:
        via_prev = via_prev + scaled(2, grad_t)
    noise_step = scaled(3, grad_t) if grad_t is not None else torch.zeros_like(like)
    return (scaled(0, via_prev), None, None, scaled(1, via_prev) if ctx.has_noise else None,
            noise_step if ctx.has_noise else None, None)


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
        _, grad_real, grad_fake = reference.gan_loss(real, fake, kind, part, clamp)
    need_real, need_fake = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    return ((grad * grad_real).to(real.dtype) if need_real and real is not None else None,
            (grad * grad_fake).to(fake.dtype) if need_fake else None, None, None, None)


torch.library.register_autograd("fastddgan::affine_noise", _affine_noise_backward, setup_context=_affine_noise_setup)
torch.library.register_autograd("fastddgan::ddpm_step", _ddpm_step_backward, setup_context=_ddpm_step_setup)
torch.library.register_autograd("fastddgan::q_sample_pairs", _q_sample_pairs_backward,
                                setup_context=_q_sample_pairs_setup)
torch.library.register_autograd("fastddgan::gan_loss", _gan_loss_backward, setup_context=_gan_loss_setup)
