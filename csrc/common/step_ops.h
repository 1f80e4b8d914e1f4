// The per-element math of the two fused ops, shared by the CPU and CUDA kernels (host and device code).
// Reference: fastddgan/ops/reference.py. `c` holds the coefficient-table column of the element's sample.
//
//   affine_noise: out = c[0] a + c[1] b + c[2] n                  (b term only when the op has b)
//   ddpm_step:    x0  = c[0] b - c[1] a  (a = eps, b = x_t), clipped to [-1, 1] if CLIP (NaN stays NaN),
//                 out = c[2] x0 + c[3] b + c[4] n
// The callers convert the result to the output dtype with static_cast, which rounds to nearest even (c10::Half and
// c10::BFloat16), and read the seed tensor through .contiguous() (prepare_step_args).
#pragma once

#include "philox.h"

namespace fastddgan {

template <bool HAS_B>
struct AffineNoiseOp {
  static constexpr int kRows = 3;
  static constexpr bool kHasB = HAS_B;
  template <typename acc_t>
  FDG_HD acc_t operator()(const acc_t* c, acc_t a, acc_t b, acc_t n) const {
    acc_t out = c[0] * a + c[2] * n;
    if (HAS_B) out += c[1] * b;
    return out;
  }
};

template <bool CLIP>
struct DdpmStepOp {
  static constexpr int kRows = 5;
  static constexpr bool kHasB = true;
  template <typename acc_t>
  FDG_HD acc_t operator()(const acc_t* c, acc_t eps, acc_t x_t, acc_t n) const {
    acc_t x0 = c[0] * x_t - c[1] * eps;
    // both comparisons are false for NaN, which passes through unclipped (as with torch.clamp); keep it that way
    // (fminf / fmaxf would return the bound instead)
    if (CLIP) x0 = x0 < acc_t(-1) ? acc_t(-1) : (x0 > acc_t(1) ? acc_t(1) : x0);
    return c[2] * x0 + c[3] * x_t + c[4] * n;
  }
};

// Timestep index clamped into [0, T): device-side t is not range-checked on the host (that would need a sync),
// so the kernels never read outside the table.
FDG_HD int64_t clamp_step(int64_t t, int64_t T) { return t < 0 ? 0 : (t >= T ? T - 1 : t); }

}  // namespace fastddgan
