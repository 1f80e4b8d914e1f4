"""The counter-based Gaussian stream of the fused kernels, written in plain PyTorch (the reference for tests).

Every fused backend (C++ CPU, CUDA, Triton) draws the noise of a call from a seed tensor ``[key, sample_offset]``
(int64) the same way:

* element ``e`` (flat index within its sample, storage order) of sample ``b`` (index within the call) uses the
  Philox counter ``(e // 4, b + sample_offset, 0, 0)`` and lane ``e % 4``, so each sample has a stream of its own:
  its noise does not depend on which other samples share the call, and a batch split into chunks (with
  ``sample_offset`` = the chunk's first sample) draws exactly the noise of the whole batch;
* Philox4x32-10 (Salmon et al. 2011) with key ``(lo32(key), hi32(key))`` gives four 32-bit words ``r0..r3``;
* each word becomes a uniform ``u = ((r >> 9) + 0.5) / 2**23`` in the open interval (0, 1) (exact in float32);
* Box-Muller: ``n0, n1 = sqrt(-2 ln u0) (cos, sin)(2 pi u1)``, ``n2, n3 = sqrt(-2 ln u2) (cos, sin)(2 pi u3)``.

So the same seed gives the same noise on every backend and device, up to float rounding of log/sin/cos.
The key is drawn from a torch Generator (see ``fastddgan.ops.draw_seed``).
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


def _rounds(c0, c1, c2, c3, k0, k1):
    """The ten rounds of Philox4x32-10 on uint32 values held in int64 tensors (or ints): per round
    (hi, lo)(M_A c0) and (hi, lo)(M_B c2) give (hi_B ^ c1 ^ k0, lo_B, hi_A ^ c3 ^ k1, lo_A), then the key is bumped
    by the Weyl constants (K_A, K_B)."""
    for _ in range(10):
        hi_b, lo_b = _mul_hi_lo(c2, _ROUND_B)
        hi_a, lo_a = _mul_hi_lo(c0, _ROUND_A)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0, k1 = (k0 + _KEY_A) & _MASK32, (k1 + _KEY_B) & _MASK32
    return c0, c1, c2, c3


def philox4x32_10(c0: torch.Tensor, c1: torch.Tensor, key):
    """Four uint32 words (as int64 tensors) for the counters ``(c0, c1, 0, 0)`` (uint32 values in int64 tensors).

    ``key`` is a Python int or a one-element int64 tensor holding the key's 64 bits (two's complement).
    """
    zeros = torch.zeros_like(c0)
    return _rounds(c0, c1, zeros, zeros, key & _MASK32, (key >> 32) & _MASK32)


def philox_words(counters: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """The raw words of Philox4x32-10 for each row of ``counters`` (N, 4) under the key words ``key`` = (k0, k1),
    uint32 values in int64 tensors; the compiled backends expose the same function (known-answer tests)."""
    c = counters.to(torch.int64) & _MASK32
    k = key.reshape(-1).to(device=c.device, dtype=torch.int64) & _MASK32
    return torch.stack(_rounds(c[:, 0], c[:, 1], c[:, 2], c[:, 3], k[0], k[1]), dim=1)


def uniform_open(word: torch.Tensor) -> torch.Tensor:
    """uint32 word -> uniform ((word >> 9) + 0.5) / 2**23 in (0, 1), as float64 (exactly the kernels' float32)."""
    return ((word >> 9).double() + 0.5) * 2.0**-23


def seed_tensor(key: int, sample_offset: int = 0, device=None) -> torch.Tensor:
    """The (2,) int64 seed tensor ``[key, sample_offset]`` the fused kernels read (key taken modulo 2**64).

    For a CUDA device it is written to pinned host memory and copied without blocking: no host-device sync (a
    pageable copy would wait for the GPU), so samplers can take a seed inside a sync-free loop."""
    key = int(key) & 0xFFFFFFFFFFFFFFFF
    key = key - (1 << 64) if key >= 1 << 63 else key
    device = torch.device("cpu") if device is None else torch.device(device)
    if device.type == "cuda":
        host = torch.tensor([key, int(sample_offset)], dtype=torch.int64, pin_memory=True)
        return host.to(device, non_blocking=True)
    return torch.tensor([key, int(sample_offset)], dtype=torch.int64, device=device)


def philox_normal(seed: torch.Tensor, batch: int, inner: int, device=None) -> torch.Tensor:
    """The (batch, inner) float64 noise the kernels draw for the seed tensor ``[key, sample_offset]``."""
    seed = seed.reshape(-1).to(device=device, dtype=torch.int64)
    key, offset = seed[:1], (seed[1:2] if seed.numel() > 1 else torch.zeros_like(seed[:1]))
    n_counters = (inner + 3) // 4
    c0 = torch.arange(n_counters, dtype=torch.int64, device=device).expand(batch, n_counters)
    c1 = (torch.arange(batch, dtype=torch.int64, device=device) + offset).unsqueeze(1).expand(batch, n_counters)
    r = [uniform_open(w) for w in philox4x32_10(c0.reshape(-1), c1.reshape(-1) & _MASK32, key)]
    rad01 = torch.sqrt(-2.0 * torch.log(r[0]))
    rad23 = torch.sqrt(-2.0 * torch.log(r[2]))
    th01 = 2.0 * math.pi * r[1]
    th23 = 2.0 * math.pi * r[3]
    lanes = torch.stack([rad01 * torch.cos(th01), rad01 * torch.sin(th01),
                         rad23 * torch.cos(th23), rad23 * torch.sin(th23)], dim=1)
    return lanes.reshape(batch, 4 * n_counters)[:, :inner]
