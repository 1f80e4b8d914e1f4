"""Triton kernels of the fused ops: ``affine_noise`` and ``ddpm_step`` (one kernel for both), ``q_sample_pairs``.

Same contract and noise stream as the C++ backends (see ``fastddgan/ops/philox.py``): program ``p`` owns the items
``[p*BLOCK, (p+1)*BLOCK)``, item ``w`` being Philox counter ``c = w % per_sample`` of sample ``b = w // per_sample``
(elements ``4c + lane`` of that sample); the seed ``[key, sample_offset]`` is loaded from device memory, so
CUDA-graph replays draw fresh noise. An expanded scalar ``a`` (one value, every stride 0: the zero of
``fastddgan.ops.normal``) is read in place as ``a[0]``. Launches run on the tensors' GPU (a device guard), not the
current one. Runs on CPU tensors under ``TRITON_INTERPRET=1`` (tests).
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch
import triton
import triton.language as tl

BLOCK_COUNTERS = 256  # 1024 elements per program
# a*b+c in two roundings (no FMA contraction), as in the C++/CUDA builds and the reference's separate ops: the
# explicit-noise paths then equal the reference bit for bit (Triton fuses them by default); a launch option of
# Triton's NVIDIA/AMD backends, dropped by the interpreter
NO_FMA = {"enable_fp_fusion": False}


@triton.jit
def _philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of the counters (c0, c1, c2, c3) under the key (k0, k1), all uint32 (written out here rather than
    taken from tl.randint4x, whose handling of the second counter word differs between Triton versions)."""
    for _ in tl.static_range(10):
        prev0 = c0
        prev2 = c2
        c0 = tl.umulhi(prev2, 0xCD9E8D57) ^ c1 ^ k0
        c2 = tl.umulhi(prev0, 0xD2511F53) ^ c3 ^ k1
        c1 = prev2 * 0xCD9E8D57
        c3 = prev0 * 0xD2511F53
        k0 = k0 + 0x9E3779B9
        k1 = k1 + 0xBB67AE85
    return c0, c1, c2, c3


@triton.jit
def _normal4(key, c0, c1):
    k0 = (key & 0xFFFFFFFF).to(tl.uint32)
    k1 = ((key >> 32) & 0xFFFFFFFF).to(tl.uint32)
    r0, r1, r2, r3 = _philox4x32_10(c0, c1, c0 * 0, c0 * 0, k0, k1)  # the stream's counters (c, b + offset, 0, 0)
    inv = 1.1920928955078125e-07  # 2**-23
    u0 = ((r0 >> 9).to(tl.float32) + 0.5) * inv
    u1 = ((r1 >> 9).to(tl.float32) + 0.5) * inv
    u2 = ((r2 >> 9).to(tl.float32) + 0.5) * inv
    u3 = ((r3 >> 9).to(tl.float32) + 0.5) * inv
    rad01 = tl.sqrt(-2.0 * tl.log(u0))
    rad23 = tl.sqrt(-2.0 * tl.log(u2))
    th01 = 6.283185307179586 * u1
    th23 = 6.283185307179586 * u3
    return rad01 * tl.cos(th01), rad01 * tl.sin(th01), rad23 * tl.cos(th23), rad23 * tl.sin(th23)


@triton.jit
def _item_normals(seed_ptr, sample, counter, HAS_NOISE: tl.constexpr, BLOCK: tl.constexpr):
    """The four normals of each item (counter ``counter`` of sample ``sample``) from the seed [key, sample_offset]
    at ``seed_ptr``; zeros when the noise is given instead."""
    if HAS_NOISE:
        n0 = tl.zeros([BLOCK], tl.float32)
        n1 = n0
        n2 = n0
        n3 = n0
    else:
        row = ((sample + tl.load(seed_ptr + 1)) & 0xFFFFFFFF).to(tl.uint32)
        n0, n1, n2, n3 = _normal4(tl.load(seed_ptr), counter.to(tl.uint32), row)
    return n0, n1, n2, n3


@triton.jit
def _to_output(x, OUT: tl.constexpr):
    """``x`` (the compute dtype) cast to the output dtype, rounded to nearest even like torch and the C++ kernels.

    bfloat16 is rounded here by hand: Triton's interpreter truncates float32 -> bfloat16 casts (half the elements
    one ulp off); compiled Triton already rounds to nearest even, so this gives the same bits there."""
    if OUT == tl.bfloat16:
        bits = x.to(tl.float32).to(tl.uint32, bitcast=True)
        bits = bits + 0x7FFF + ((bits >> 16) & 1)  # ties to even; a carry into the exponent is the right result
        bits = tl.where(x != x, 0x7FC00000, bits)  # any NaN -> the quiet NaN (the sum could reach infinity)
        return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        return x.to(OUT)


@triton.jit
def _step_lane(idx, sample, mask, gen, a_ptr, b_ptr, noise_ptr, t_ptr, table_ptr, out_ptr, steps,
               DDPM: tl.constexpr, HAS_B: tl.constexpr, HAS_NOISE: tl.constexpr, CLIP: tl.constexpr,
               A_SCALAR: tl.constexpr):
    step = tl.load(t_ptr + sample, mask=mask, other=0)
    step = tl.minimum(tl.maximum(step, 0), steps - 1)
    c0 = tl.load(table_ptr + step, mask=mask, other=0.0)
    c1 = tl.load(table_ptr + steps + step, mask=mask, other=0.0)
    c2 = tl.load(table_ptr + 2 * steps + step, mask=mask, other=0.0)
    if A_SCALAR:
        a = tl.load(a_ptr).to(c0.dtype)
    else:
        a = tl.load(a_ptr + idx, mask=mask, other=0.0).to(c0.dtype)
    if HAS_NOISE:
        n = tl.load(noise_ptr + idx, mask=mask, other=0.0).to(c0.dtype)
    else:
        n = gen.to(c0.dtype)
    if DDPM:  # a = eps, b = x_t
        c3 = tl.load(table_ptr + 3 * steps + step, mask=mask, other=0.0)
        c4 = tl.load(table_ptr + 4 * steps + step, mask=mask, other=0.0)
        x_t = tl.load(b_ptr + idx, mask=mask, other=0.0).to(c0.dtype)
        x0 = c0 * x_t - c1 * a
        if CLIP:  # NaN stays NaN (the default min/max would turn it into a bound); not tl.clamp with
            # propagate_nan: Triton 3.6 cannot lower that for float64 (no llvm.nvvm.fmin.nan.xorsign.abs)
            x0 = tl.where(x0 != x0, x0, tl.minimum(tl.maximum(x0, -1.0), 1.0))
        out = c2 * x0 + c3 * x_t + c4 * n
    else:
        out = c0 * a + c2 * n
        if HAS_B:
            out += c1 * tl.load(b_ptr + idx, mask=mask, other=0.0).to(c0.dtype)
    tl.store(out_ptr + idx, _to_output(out, out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _step_kernel(a_ptr, b_ptr, noise_ptr, seed_ptr, t_ptr, table_ptr, out_ptr, n_items, per_sample, inner, steps,
                 DDPM: tl.constexpr, HAS_B: tl.constexpr, HAS_NOISE: tl.constexpr, CLIP: tl.constexpr,
                 A_SCALAR: tl.constexpr, BLOCK: tl.constexpr):
    items = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    sample = items // per_sample
    counter = items % per_sample
    n0, n1, n2, n3 = _item_normals(seed_ptr, sample, counter, HAS_NOISE, BLOCK)
    live = items < n_items
    base = sample * inner + 4 * counter
    _step_lane(base, sample, live & (4 * counter < inner), n0, a_ptr, b_ptr, noise_ptr, t_ptr, table_ptr,
               out_ptr, steps, DDPM, HAS_B, HAS_NOISE, CLIP, A_SCALAR)
    _step_lane(base + 1, sample, live & (4 * counter + 1 < inner), n1, a_ptr, b_ptr, noise_ptr, t_ptr, table_ptr,
               out_ptr, steps, DDPM, HAS_B, HAS_NOISE, CLIP, A_SCALAR)
    _step_lane(base + 2, sample, live & (4 * counter + 2 < inner), n2, a_ptr, b_ptr, noise_ptr, t_ptr, table_ptr,
               out_ptr, steps, DDPM, HAS_B, HAS_NOISE, CLIP, A_SCALAR)
    _step_lane(base + 3, sample, live & (4 * counter + 3 < inner), n3, a_ptr, b_ptr, noise_ptr, t_ptr, table_ptr,
               out_ptr, steps, DDPM, HAS_B, HAS_NOISE, CLIP, A_SCALAR)


@triton.jit
def _pair_lane(idx, sample, mask, gen_prev, gen_step, x0_ptr, noise_prev_ptr, noise_step_ptr, t_ptr, table_ptr,
               prev_ptr, xt_ptr, steps, HAS_NOISE: tl.constexpr):
    """One lane of q_sample_pairs: x_prev = c0 x0 + c1 n_prev (stored, rounded to the data dtype), then
    x_t = c2 x_prev + c3 n_step from the stored x_prev, as the two affine_noise calls it replaces compute them."""
    step = tl.load(t_ptr + sample, mask=mask, other=0)
    step = tl.minimum(tl.maximum(step, 0), steps - 1)
    c0 = tl.load(table_ptr + step, mask=mask, other=0.0)
    c1 = tl.load(table_ptr + steps + step, mask=mask, other=0.0)
    c2 = tl.load(table_ptr + 2 * steps + step, mask=mask, other=0.0)
    c3 = tl.load(table_ptr + 3 * steps + step, mask=mask, other=0.0)
    x0 = tl.load(x0_ptr + idx, mask=mask, other=0.0).to(c0.dtype)
    if HAS_NOISE:
        n_prev = tl.load(noise_prev_ptr + idx, mask=mask, other=0.0).to(c0.dtype)
        n_step = tl.load(noise_step_ptr + idx, mask=mask, other=0.0).to(c0.dtype)
    else:
        n_prev = gen_prev.to(c0.dtype)
        n_step = gen_step.to(c0.dtype)
    x_prev = _to_output(c0 * x0 + c1 * n_prev, prev_ptr.dtype.element_ty)
    tl.store(prev_ptr + idx, x_prev, mask=mask)
    tl.store(xt_ptr + idx, _to_output(c2 * x_prev.to(c0.dtype) + c3 * n_step, xt_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _pair_kernel(x0_ptr, noise_prev_ptr, noise_step_ptr, seed_ptr, t_ptr, table_ptr, prev_ptr, xt_ptr, n_items,
                 per_sample, inner, steps, HAS_NOISE: tl.constexpr, BLOCK: tl.constexpr):
    items = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    sample = items // per_sample
    counter = items % per_sample
    p0, p1, p2, p3 = _item_normals(seed_ptr, sample, counter, HAS_NOISE, BLOCK)  # seed row i: noise i
    s0, s1, s2, s3 = _item_normals(seed_ptr + 2, sample, counter, HAS_NOISE, BLOCK)
    live = items < n_items
    base = sample * inner + 4 * counter
    _pair_lane(base, sample, live & (4 * counter < inner), p0, s0, x0_ptr, noise_prev_ptr, noise_step_ptr, t_ptr,
               table_ptr, prev_ptr, xt_ptr, steps, HAS_NOISE)
    _pair_lane(base + 1, sample, live & (4 * counter + 1 < inner), p1, s1, x0_ptr, noise_prev_ptr, noise_step_ptr,
               t_ptr, table_ptr, prev_ptr, xt_ptr, steps, HAS_NOISE)
    _pair_lane(base + 2, sample, live & (4 * counter + 2 < inner), p2, s2, x0_ptr, noise_prev_ptr, noise_step_ptr,
               t_ptr, table_ptr, prev_ptr, xt_ptr, steps, HAS_NOISE)
    _pair_lane(base + 3, sample, live & (4 * counter + 3 < inner), p3, s3, x0_ptr, noise_prev_ptr, noise_step_ptr,
               t_ptr, table_ptr, prev_ptr, xt_ptr, steps, HAS_NOISE)


def device_guard(x: torch.Tensor):
    """Launch on ``x``'s GPU (Triton launches on the current device otherwise); nothing for CPU tensors."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def expanded_scalar(x: torch.Tensor) -> bool:
    """One value expanded to a larger shape (every stride of a dimension of size > 1 is 0), as in the C++ kernels."""
    return x.numel() > 1 and all(size == 1 or stride == 0 for size, stride in zip(x.shape, x.stride()))


def _launch(a: torch.Tensor, b: Optional[torch.Tensor], t: torch.Tensor, table: torch.Tensor,
            noise: Optional[torch.Tensor], seed: Optional[torch.Tensor], ddpm: bool, clip: bool) -> torch.Tensor:
    a_scalar = expanded_scalar(a)
    a = a if a_scalar else a.contiguous()
    out = torch.empty(a.shape, dtype=a.dtype, device=a.device)
    numel = a.numel()
    if numel == 0:
        return out
    b = b.contiguous() if b is not None else None
    noise = noise.contiguous() if noise is not None else None
    inner = numel // a.shape[0]
    per_sample = triton.cdiv(inner, 4)
    n_items = a.shape[0] * per_sample
    seed = seed.contiguous() if seed is not None else None  # the kernel reads seed[0] and seed[1] at offsets 0, 1
    t = t.contiguous()
    grid = (triton.cdiv(n_items, BLOCK_COUNTERS),)
    with device_guard(a):
        _step_kernel[grid](
            a, b if b is not None else out, noise if noise is not None else out, seed if seed is not None else t,
            t, table.contiguous(), out, n_items, per_sample, inner, table.shape[1],
            DDPM=ddpm, HAS_B=b is not None, HAS_NOISE=noise is not None, CLIP=clip, A_SCALAR=a_scalar,
            BLOCK=BLOCK_COUNTERS, **NO_FMA,
        )
    return out


def affine_noise(a, b, t, table, noise, seed):
    """out = table[0, t] a + table[1, t] b + table[2, t] noise; noise from ``seed`` when not given."""
    return _launch(a, b, t, table, noise, seed, ddpm=False, clip=False)


def ddpm_step(eps, x_t, t, table, noise, seed, clip_x0):
    """x0 = table[0, t] x_t - table[1, t] eps (clipped), out = table[2, t] x0 + table[3, t] x_t + table[4, t] noise."""
    return _launch(eps, x_t, t, table, noise, seed, ddpm=True, clip=bool(clip_x0))


def q_sample_pairs(x0, t, table, noise_prev, noise_step, seed):
    """x_prev = table[0, t] x0 + table[1, t] noise_prev, x_t = table[2, t] x_prev + table[3, t] noise_step in one
    pass; the noises from the rows of ``seed`` (2, 2) when not given."""
    x0 = x0.contiguous()
    x_prev = torch.empty(x0.shape, dtype=x0.dtype, device=x0.device)
    x_t = torch.empty_like(x_prev)
    numel = x0.numel()
    if numel == 0:
        return x_prev, x_t
    has_noise = noise_prev is not None
    noise_prev = noise_prev.to(x0.dtype).contiguous() if has_noise else x0
    noise_step = noise_step.to(x0.dtype).contiguous() if has_noise else x0
    inner = numel // x0.shape[0]
    per_sample = triton.cdiv(inner, 4)
    n_items = x0.shape[0] * per_sample
    t = t.contiguous()
    with device_guard(x0):
        _pair_kernel[(triton.cdiv(n_items, BLOCK_COUNTERS),)](
            x0, noise_prev, noise_step, seed.contiguous() if seed is not None else t, t, table.contiguous(), x_prev,
            x_t, n_items, per_sample, inner, table.shape[1], HAS_NOISE=has_noise, BLOCK=BLOCK_COUNTERS, **NO_FMA,
        )
    return x_prev, x_t


@triton.jit
def _philox_words_kernel(counters_ptr, key_ptr, words_ptr, n, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = row < n
    c0 = tl.load(counters_ptr + 4 * row, mask=live, other=0).to(tl.uint32)
    c1 = tl.load(counters_ptr + 4 * row + 1, mask=live, other=0).to(tl.uint32)
    c2 = tl.load(counters_ptr + 4 * row + 2, mask=live, other=0).to(tl.uint32)
    c3 = tl.load(counters_ptr + 4 * row + 3, mask=live, other=0).to(tl.uint32)
    k0 = (tl.load(key_ptr) & 0xFFFFFFFF).to(tl.uint32)
    k1 = (tl.load(key_ptr + 1) & 0xFFFFFFFF).to(tl.uint32)
    r0, r1, r2, r3 = _philox4x32_10(c0, c1, c2, c3, k0, k1)
    tl.store(words_ptr + 4 * row, r0.to(tl.int64), mask=live)
    tl.store(words_ptr + 4 * row + 1, r1.to(tl.int64), mask=live)
    tl.store(words_ptr + 4 * row + 2, r2.to(tl.int64), mask=live)
    tl.store(words_ptr + 4 * row + 3, r3.to(tl.int64), mask=live)


def philox_words(counters: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """The raw Philox4x32-10 words of each row of ``counters`` (N, 4) under ``key`` = (k0, k1), uint32 values in
    int64 tensors: the round function of the kernels above, for the known-answer tests."""
    counters = counters.contiguous()
    key = key.to(device=counters.device, dtype=torch.int64).contiguous()
    words = torch.empty_like(counters)
    if counters.shape[0]:
        with device_guard(counters):
            _philox_words_kernel[(triton.cdiv(counters.shape[0], 128),)](counters, key, words, counters.shape[0],
                                                                         BLOCK=128)
    return words
