"""The counter-based Gaussian stream of the fused kernels, written in plain PyTorch (the reference for tests).

Every fused backend (C++ CPU, CUDA, Triton) draws the noise of a call from one 64-bit ``seed`` the same way:

* element ``i`` of the output (flat index in storage order) uses counter ``c = i // 4`` and lane ``i % 4``;
* Philox4x32-10 (Salmon et al. 2011) maps counter ``(lo32(c), hi32(c), 0, 0)`` and key ``(lo32(seed), hi32(seed))``
  to four 32-bit words ``r0..r3`` (the same generator as ``triton.language.randint4x``);
* each word becomes a uniform ``u = ((r >> 9) + 0.5) / 2**23`` in the open interval (0, 1) (exact in float32);
* Box-Muller: ``n0, n1 = sqrt(-2 ln u0) (cos, sin)(2 pi u1)``, ``n2, n3 = sqrt(-2 ln u2) (cos, sin)(2 pi u3)``.

So the same seed gives the same noise on every backend and device, up to float rounding of log/sin/cos.
The seed itself is drawn from a torch Generator (see ``fastddgan.ops.draw_seed``).
"""

from __future__ import annotations

import math

import torch

_MASK32 = 0xFFFFFFFF
_ROUND_A = 0xD2511F53
_ROUND_B = 0xCD9E8D57
_KEY_A = 0x9E3779B9
_KEY_B = 0xBB67AE85


def _mul_hi_lo(x: torch.Tensor, const: int):
    """(hi32, lo32) of the 64-bit product of uint32 values ``x`` (int64 tensor) and a uint32 constant, exactly."""
    c_lo, c_hi = const & 0xFFFF, const >> 16
    p_lo = x * c_lo  # < 2**48
    p_hi = x * c_hi  # < 2**48
    lo = (p_lo + ((p_hi & 0xFFFF) << 16)) & _MASK32
    hi = (p_hi + (p_lo >> 16)) >> 16
    return hi & _MASK32, lo


def philox4x32_10(counter: torch.Tensor, seed):
    """Four uint32 words (as int64 tensors) for each int64 ``counter`` under the 64-bit ``seed``.

    ``seed`` is a Python int or a one-element int64 tensor holding the seed's bits (two's complement).
    """
    c0 = counter & _MASK32
    c1 = (counter >> 32) & _MASK32
    c2 = torch.zeros_like(counter)
    c3 = torch.zeros_like(counter)
    k0, k1 = seed & _MASK32, (seed >> 32) & _MASK32
    for _ in range(10):
        hi_b, lo_b = _mul_hi_lo(c2, _ROUND_B)
        hi_a, lo_a = _mul_hi_lo(c0, _ROUND_A)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0, k1 = (k0 + _KEY_A) & _MASK32, (k1 + _KEY_B) & _MASK32
    return c0, c1, c2, c3


def uniform_open(word: torch.Tensor) -> torch.Tensor:
    """uint32 word -> uniform ((word >> 9) + 0.5) / 2**23 in (0, 1), as float64 (exactly the kernels' float32)."""
    return ((word >> 9).double() + 0.5) * 2.0**-23


def philox_normal(seed, numel: int, device=None) -> torch.Tensor:
    """The first ``numel`` values of the stream for ``seed`` (int or one-element int64 tensor), in float64."""
    if isinstance(seed, torch.Tensor):
        seed = seed.reshape(-1)[:1].to(device=device, dtype=torch.int64)
    else:
        seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    n_counters = (numel + 3) // 4
    counter = torch.arange(n_counters, dtype=torch.int64, device=device)
    r = [uniform_open(w) for w in philox4x32_10(counter, seed)]
    rad01 = torch.sqrt(-2.0 * torch.log(r[0]))
    rad23 = torch.sqrt(-2.0 * torch.log(r[2]))
    th01 = 2.0 * math.pi * r[1]
    th23 = 2.0 * math.pi * r[3]
    lanes = torch.stack([rad01 * torch.cos(th01), rad01 * torch.sin(th01),
                         rad23 * torch.cos(th23), rad23 * torch.sin(th23)], dim=1)
    return lanes.reshape(-1)[:numel]
