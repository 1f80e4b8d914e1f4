// Counter-based Gaussian noise shared by the CPU and CUDA kernels (host and device code).
//
// The stream is defined once, in fastddgan/ops/philox.py: output element i uses Philox4x32-10 counter
// (i / 4) and lane (i % 4), key = the 64-bit seed; each 32-bit word r becomes u = ((r >> 9) + 0.5) / 2^23,
// and Box-Muller turns (u0, u1) and (u2, u3) into four normals. log and sincos are branch-free float
// polynomials (Cephes coefficients, about 1 ulp on our ranges) evaluated with explicit fused multiply-adds, so
// that the CPU loops vectorise and the CPU and CUDA backends give the same bits.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define FDG_HD __host__ __device__ __forceinline__
#else
#include <cmath>
#define FDG_HD inline
#endif

namespace fastddgan {

// Philox4x32-10 (Salmon et al. 2011) of the counter words c[0..3] under the key words (k0, k1): per round
// (hi, lo)(M0 c0) and (hi, lo)(M1 c2) give c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0), then the key is bumped by
// the Weyl constants. Checked against the Random123 known answers (tests/test_backends.py).
FDG_HD void philox4x32_10_words(const uint32_t c[4], uint32_t k0, uint32_t k1, uint32_t r[4]) {
  uint32_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
#if defined(__CUDACC__)
#pragma unroll
#elif defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 10
#endif
  for (int round = 0; round < 10; ++round) {
    const uint64_t pb = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint64_t pa = static_cast<uint64_t>(0xD2511F53u) * c0;
    c0 = static_cast<uint32_t>(pb >> 32) ^ c1 ^ k0;
    c2 = static_cast<uint32_t>(pa >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(pb);
    c3 = static_cast<uint32_t>(pa);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  r[0] = c0; r[1] = c1; r[2] = c2; r[3] = c3;
}

// The stream's counters: (lo32(counter), hi32(counter), 0, 0) under the key (lo32(seed), hi32(seed)).
FDG_HD void philox4x32_10(uint64_t counter, uint64_t seed, uint32_t r[4]) {
  const uint32_t c[4] = {static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u};
  philox4x32_10_words(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), r);
}

// a * b + c rounded once (IEEE fused multiply-add): the same bits on every backend. The polynomials below use it
// explicitly (both builds otherwise compile without contraction): one instruction on CUDA, on x86 CPUs with FMA
// (the AVX2 and AVX-512 clones of the CPU loops) and on ARMv8; a correctly rounded libm call in the baseline x86
// clone.
FDG_HD float fmadd(float a, float b, float c) {
#if defined(__CUDACC__) || defined(__HIPCC__)
  return fmaf(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

FDG_HD float bits_to_float(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof(f));
  return f;
}

FDG_HD uint32_t float_to_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof(b));
  return b;
}

// u in (0, 1): ((r >> 9) + 0.5) / 2^23, exact in float (one fma of exact terms).
FDG_HD float uniform_open(uint32_t r) {
  return fmadd(static_cast<float>(r >> 9), 1.1920928955078125e-07f, 5.9604644775390625e-08f);
}

// ln(uniform_open(r)): u = 2^e m with m in [sqrt(1/2), sqrt(2)), z = m - 1, ln u = z - z^2/2 + z^3 P(z) + e ln 2
// (Cephes logf's degree-8 P, ln 2 split in two parts), Horner steps as fmas.
FDG_HD float log_uniform(uint32_t r) {
  const uint32_t bits = float_to_bits(uniform_open(r));
  int e = static_cast<int>(bits >> 23) - 127;                    // u > 0, so the sign bit is clear
  float m = bits_to_float((bits & 0x007fffffu) | 0x3f800000u);  // mantissa in [1, 2)
  const bool big = m > 1.41421356f;
  m = big ? 0.5f * m : m;
  e += big ? 1 : 0;
  const float z = m - 1.0f;
  const float zz = z * z;
  float p = 7.0376836292e-2f;
  p = fmadd(p, z, -1.1514610310e-1f);
  p = fmadd(p, z, 1.1676998740e-1f);
  p = fmadd(p, z, -1.2420140846e-1f);
  p = fmadd(p, z, 1.4249322787e-1f);
  p = fmadd(p, z, -1.6668057665e-1f);
  p = fmadd(p, z, 2.0000714765e-1f);
  p = fmadd(p, z, -2.4999993993e-1f);
  p = fmadd(p, z, 3.3333331174e-1f);
  const float fe = static_cast<float>(e);
  const float y = fmadd(p * z, zz, fmadd(-2.12194440e-4f, fe, -0.5f * zz));
  return fmadd(0.693359375f, fe, z + y);
}

// sin and cos of 2 pi u for u = uniform_open(r), reduced in integers: with k = r >> 9 (u = (2k + 1) 2^-24), the
// quadrant q = round(4u) = (k + 2^20) >> 21 and x = 2 pi (u - q/4) = (2k + 1 - q 2^22) (pi 2^-23) in [-pi/4, pi/4]
// (the integer is exact in float, so x is one rounding); Cephes sinf / cosf polynomials on x; the quadrant swaps
// sin and cos (q odd) and flips signs (sin: q & 2, cos: (q + 1) & 2) by exact bit operations.
FDG_HD void sincos_2pi_uniform(uint32_t r, float* s_out, float* c_out) {
  const int32_t k = static_cast<int32_t>(r >> 9);
  const int32_t q = (k + (1 << 20)) >> 21;
  const float x = static_cast<float>(2 * k + 1 - (q << 22)) * (6.28318530717958647692f * 5.9604644775390625e-08f);
  const float z = x * x;
  const float s = fmadd(x * z, fmadd(z, fmadd(z, -1.9515295891e-4f, 8.3321608736e-3f), -1.6666654611e-1f), x);
  const float c = fmadd(z * z, fmadd(z, fmadd(z, 2.443315711809948e-5f, -1.388731625493765e-3f),
                                     4.166664568298827e-2f),
                        fmadd(-0.5f, z, 1.0f));
  const bool swap = (q & 1) != 0;
  *s_out = bits_to_float(float_to_bits(swap ? c : s) ^ (static_cast<uint32_t>(q & 2) << 30));
  *c_out = bits_to_float(float_to_bits(swap ? s : c) ^ (static_cast<uint32_t>((q + 1) & 2) << 30));
}

// The four normals of the words r, lane order n0..n3 (see the header comment).
FDG_HD void box_muller4(const uint32_t r[4], float n[4]) {
#if defined(__CUDACC__) || defined(__HIPCC__)
  const float rad01 = sqrtf(-2.0f * log_uniform(r[0]));
  const float rad23 = sqrtf(-2.0f * log_uniform(r[2]));
#else
  const float rad01 = std::sqrt(-2.0f * log_uniform(r[0]));
  const float rad23 = std::sqrt(-2.0f * log_uniform(r[2]));
#endif
  float s, c;
  sincos_2pi_uniform(r[1], &s, &c);
  n[0] = rad01 * c;
  n[1] = rad01 * s;
  sincos_2pi_uniform(r[3], &s, &c);
  n[2] = rad23 * c;
  n[3] = rad23 * s;
}

// The four normals of one counter.
FDG_HD void normal4(uint64_t seed, uint64_t counter, float n[4]) {
  uint32_t r[4];
  philox4x32_10(counter, seed, r);
  box_muller4(r, n);
}

}  // namespace fastddgan
