// Counter-based Gaussian noise shared by the CPU and CUDA kernels (host and device code).
//
// The stream is defined once, in fastddgan/ops/philox.py: output element i uses Philox4x32-10 counter
// (i / 4) and lane (i % 4), key = the 64-bit seed; each 32-bit word r becomes u = ((r >> 9) + 0.5) / 2^23,
// and Box-Muller turns (u0, u1) and (u2, u3) into four normals. log and sincos are branch-free float
// polynomials (Cephes coefficients, about 1 ulp on our ranges) so that the CPU loops vectorise and the CPU
// and CUDA backends agree to float rounding.
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

// u in (0, 1): ((r >> 9) + 0.5) / 2^23, exact in float.
FDG_HD float uniform_open(uint32_t r) {
  return (static_cast<float>(r >> 9) + 0.5f) * 1.1920928955078125e-07f;
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

// Natural log for normal positive floats (our argument is u in [2^-24, 1)).
FDG_HD float fast_logf(float x) {
  const uint32_t bits = float_to_bits(x);
  int e = static_cast<int>((bits >> 23) & 0xffu) - 127;
  float m = bits_to_float((bits & 0x007fffffu) | 0x3f800000u);  // mantissa in [1, 2)
  const bool big = m > 1.41421356f;                              // reduce to [sqrt(1/2), sqrt(2))
  m = big ? 0.5f * m : m;
  e += big ? 1 : 0;
  const float z = m - 1.0f;
  const float zz = z * z;
  float p = 7.0376836292e-2f;
  p = p * z - 1.1514610310e-1f;
  p = p * z + 1.1676998740e-1f;
  p = p * z - 1.2420140846e-1f;
  p = p * z + 1.4249322787e-1f;
  p = p * z - 1.6668057665e-1f;
  p = p * z + 2.0000714765e-1f;
  p = p * z - 2.4999993993e-1f;
  p = p * z + 3.3333331174e-1f;
  const float fe = static_cast<float>(e);
  float y = p * z * zz - 2.12194440e-4f * fe - 0.5f * zz;
  return z + y + 0.693359375f * fe;
}

// sin and cos of 2*pi*u for u in [0, 1]: reduce to x = 2*pi*(u - q/4) in [-pi/4, pi/4], quadrant q.
FDG_HD void fast_sincos_2pi(float u, float* s_out, float* c_out) {
  const int q = static_cast<int>(4.0f * u + 0.5f);
  const float x = (u - 0.25f * static_cast<float>(q)) * 6.28318530717958647692f;
  const float z = x * x;
  const float s = x + x * z * (-1.6666654611e-1f + z * (8.3321608736e-3f + z * -1.9515295891e-4f));
  const float c = 1.0f - 0.5f * z + z * z * (4.166664568298827e-2f + z * (-1.388731625493765e-3f +
                                                                           z * 2.443315711809948e-5f));
  const int quadrant = q & 3;
  const float sin_v = (quadrant == 0) ? s : (quadrant == 1) ? c : (quadrant == 2) ? -s : -c;
  const float cos_v = (quadrant == 0) ? c : (quadrant == 1) ? -s : (quadrant == 2) ? -c : s;
  *s_out = sin_v;
  *c_out = cos_v;
}

// The four normals of one counter, lane order n0..n3 (see the header comment).
FDG_HD void normal4(uint64_t seed, uint64_t counter, float n[4]) {
  uint32_t r[4];
  philox4x32_10(counter, seed, r);
#if defined(__CUDACC__)
  const float rad01 = sqrtf(-2.0f * fast_logf(uniform_open(r[0])));
  const float rad23 = sqrtf(-2.0f * fast_logf(uniform_open(r[2])));
#else
  const float rad01 = std::sqrt(-2.0f * fast_logf(uniform_open(r[0])));
  const float rad23 = std::sqrt(-2.0f * fast_logf(uniform_open(r[2])));
#endif
  float s, c;
  fast_sincos_2pi(uniform_open(r[1]), &s, &c);
  n[0] = rad01 * c;
  n[1] = rad01 * s;
  fast_sincos_2pi(uniform_open(r[3]), &s, &c);
  n[2] = rad23 * c;
  n[3] = rad23 * s;
}

}  // namespace fastddgan
