"""Triton kernel of the fused GAN loss (``gan_loss``): mean loss over the batch and its gradient w.r.t. the logits.

Same contract and per-logit terms as the C++ backends (table in ``csrc/common/gan_losses.h``, reference in
``fastddgan/ops/reference.py``). Up to MAX_PROGRAMS programs share both batches (program p takes the BLOCK-sized
pieces p, p + P, p + 2P, ...) and sum their loss terms in float64. One program writes the loss itself (the usual
case: discriminator logits are one per sample); with more, each writes its partial sums and one program of a second
kernel adds them in a fixed order. The program count depends only on the batch sizes: deterministic, graph
capturable. Runs on CPU tensors under ``TRITON_INTERPRET=1`` (tests).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import triton
import triton.language as tl

from fastddgan.ops.reference import compute_dtype

from .steps import device_guard

BLOCK = 256
MAX_PROGRAMS = 1024  # a power of two: the second kernel loads every partial sum in one block

# Kind and part codes (the same as fastddgan/ops/reference.py and csrc/common/gan_losses.h).
JS, HELLINGER, RKL, TV, WASSERSTEIN = 0, 1, 2, 3, 4
DISCRIMINATOR, GENERATOR_NON_SATURATING, GENERATOR_SATURATING = 0, 1, 2


@triton.jit
def _log1p_pos(x):
    # log(1 + x) for x >= 0, accurate for small x (Kahan's trick; Triton has no log1p).
    u = 1.0 + x
    exact = u == 1.0
    return tl.where(exact, x, tl.log(u) * (x / tl.where(exact, 1.0, u - 1.0)))


@triton.jit
def _softplus(x):
    return tl.maximum(x, 0.0) + _log1p_pos(tl.exp(-tl.abs(x)))


@triton.jit
def _sigmoid(x):
    e = tl.exp(-tl.abs(x))
    return tl.where(x > 0, 1.0 / (1.0 + e), e / (1.0 + e))


@triton.jit
def _tanh_sech2(x):
    # tanh(x) and 1 - tanh(x)^2 (Triton has no tanh): with e = exp(-2|x|), tanh = (1 - e) / (1 + e) and
    # sech^2 = 4e / (1 + e)^2 (no cancellation where tanh rounds to +-1); an odd series near 0.
    ax = tl.abs(x)
    e = tl.exp(-2.0 * ax)
    x2 = x * x
    small = ax * (1.0 + x2 * (-0.3333333333333333 + x2 * (0.13333333333333333 + x2 * -0.05396825396825397)))
    mag = tl.where(ax < 0.05, small, (1.0 - e) / (1.0 + e))
    return tl.where(x < 0, -mag, mag), 4.0 * e / ((1.0 + e) * (1.0 + e))


@triton.jit
def _soft_clamp(v, clamp, USE_CLAMP: tl.constexpr):
    # s = clamp * tanh(v / clamp) and ds/dv; the identity without a clamp.
    if USE_CLAMP:
        th, sech2 = _tanh_sech2(v / clamp)
        return clamp * th, sech2
    else:
        return v, v * 0.0 + 1.0


@triton.jit
def _real_term(v, clamp, KIND: tl.constexpr, USE_CLAMP: tl.constexpr):
    if KIND == 0:  # js: softplus(-V)
        return _softplus(-v), -_sigmoid(-v)
    elif KIND == 1 or KIND == 2:  # hellinger, rkl: exp(-s)
        s, ds = _soft_clamp(v, clamp, USE_CLAMP)
        e = tl.exp(-s)
        return e, -e * ds
    elif KIND == 3:  # tv: -tanh(V)/2
        th, sech2 = _tanh_sech2(v)
        return -0.5 * th, -0.5 * sech2
    else:  # wasserstein: -V
        return -v, v * 0.0 - 1.0


@triton.jit
def _fake_term(v, clamp, KIND: tl.constexpr, PART: tl.constexpr, USE_CLAMP: tl.constexpr):
    if KIND == 0:
        if PART == 0:  # softplus(V)
            return _softplus(v), _sigmoid(v)
        elif PART == 1:  # softplus(-V)
            return _softplus(-v), -_sigmoid(-v)
        else:  # -softplus(V)
            return -_softplus(v), -_sigmoid(v)
    elif KIND == 1 or KIND == 2:
        s, ds = _soft_clamp(v, clamp, USE_CLAMP)
        if PART == 1:  # exp(-s)
            e = tl.exp(-s)
            return e, -e * ds
        else:
            sign = 1.0 if PART == 0 else -1.0
            if KIND == 2:  # rkl: +-s
                return sign * s, sign * ds
            else:  # hellinger: +-exp(s)
                e = tl.exp(s)
                return sign * e, sign * e * ds
    elif KIND == 3:
        th, sech2 = _tanh_sech2(v)
        half = 0.5 if PART == 0 else -0.5
        return half * th, half * sech2
    else:
        if PART == 0:
            return v, v * 0.0 + 1.0
        else:
            return -v, v * 0.0 - 1.0


@triton.jit
def _gan_loss_kernel(real_ptr, fake_ptr, loss_ptr, grad_real_ptr, grad_fake_ptr, partial_ptr, n_real, n_fake,
                     clamp, KIND: tl.constexpr, PART: tl.constexpr, HAS_REAL: tl.constexpr,
                     USE_CLAMP: tl.constexpr, PROGRAMS: tl.constexpr, BLOCK: tl.constexpr):
    acc_ty = grad_fake_ptr.dtype.element_ty  # float32, or float64 for float64 logits
    pid = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    total = tl.zeros([BLOCK], tl.float64)
    for start in range(pid * BLOCK, n_fake, PROGRAMS * BLOCK):
        idx = start + offs
        mask = idx < n_fake
        v = tl.load(fake_ptr + idx, mask=mask, other=0.0).to(acc_ty)
        value, grad = _fake_term(v, clamp, KIND, PART, USE_CLAMP)
        total += tl.where(mask, value, 0.0).to(tl.float64)
        tl.store(grad_fake_ptr + idx, (grad / n_fake).to(acc_ty), mask=mask)
    sum_fake = tl.sum(total, axis=0)
    sum_real = sum_fake * 0.0
    if HAS_REAL:
        total_real = tl.zeros([BLOCK], tl.float64)
        for start in range(pid * BLOCK, n_real, PROGRAMS * BLOCK):
            idx = start + offs
            mask = idx < n_real
            v = tl.load(real_ptr + idx, mask=mask, other=0.0).to(acc_ty)
            value, grad = _real_term(v, clamp, KIND, USE_CLAMP)
            total_real += tl.where(mask, value, 0.0).to(tl.float64)
            tl.store(grad_real_ptr + idx, (grad / n_real).to(acc_ty), mask=mask)
        sum_real = tl.sum(total_real, axis=0)
    if PROGRAMS == 1:
        loss = sum_fake / n_fake
        if HAS_REAL:
            loss += sum_real / n_real
        tl.store(loss_ptr, loss.to(acc_ty))
    else:
        tl.store(partial_ptr + pid, sum_real)
        tl.store(partial_ptr + PROGRAMS + pid, sum_fake)


@triton.jit
def _gan_loss_finish_kernel(partial_ptr, loss_ptr, n_real, n_fake, HAS_REAL: tl.constexpr,
                            PROGRAMS: tl.constexpr):
    """loss = (sum of the real partial sums) / n_real + (sum of the fake ones) / n_fake, in a fixed order."""
    offs = tl.arange(0, PROGRAMS)
    loss = tl.sum(tl.load(partial_ptr + PROGRAMS + offs), axis=0) / n_fake
    if HAS_REAL:
        loss += tl.sum(tl.load(partial_ptr + offs), axis=0) / n_real
    tl.store(loss_ptr, loss.to(loss_ptr.dtype.element_ty))


def gan_loss(real: Optional[torch.Tensor], fake: torch.Tensor, kind: int, part: int,
             clamp: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean loss, d loss / d real logits, d loss / d fake logits), in the compute dtype; real only for part 0."""
    if not (0 <= kind <= WASSERSTEIN and 0 <= part <= GENERATOR_SATURATING):
        raise ValueError(f"gan_loss: bad kind {kind} or part {part}")
    if (real is not None) != (part == DISCRIMINATOR):
        raise ValueError("gan_loss takes real logits for the discriminator part only")
    if fake.dim() != 1 or fake.numel() == 0 or (real is not None and (real.dim() != 1 or real.numel() == 0)):
        raise ValueError("gan_loss: logits must be non-empty 1-D tensors")
    acc = compute_dtype(fake.dtype)
    fake = fake.contiguous()
    real = real.contiguous() if real is not None else None
    n_real = real.numel() if real is not None else 0
    loss = torch.empty((), dtype=acc, device=fake.device)
    grad_fake = torch.empty(fake.shape, dtype=acc, device=fake.device)
    grad_real = torch.empty((n_real,), dtype=acc, device=fake.device)
    # a power of two (the finishing kernel's block), at most one program per BLOCK logits of the larger batch
    programs = min(triton.next_power_of_2(triton.cdiv(max(n_real, fake.numel()), BLOCK)), MAX_PROGRAMS)
    partial = torch.empty(2 * programs, dtype=torch.float64, device=fake.device) if programs > 1 else loss
    with device_guard(fake):
        _gan_loss_kernel[(programs,)](
            real if real is not None else fake, fake, loss, grad_real if real is not None else grad_fake, grad_fake,
            partial, n_real, fake.numel(), float(clamp),
            KIND=int(kind), PART=int(part), HAS_REAL=real is not None, USE_CLAMP=clamp > 0, PROGRAMS=programs,
            BLOCK=BLOCK,
        )
        if programs > 1:
            _gan_loss_finish_kernel[(1,)](partial, loss, n_real, fake.numel(), HAS_REAL=real is not None,
                                          PROGRAMS=programs)
    return loss, grad_real, grad_fake
