// The fused GAN loss reduction shared by the CPU and CUDA backends: per-logit math (host and device code), the
// argument checks and the entry point. Reference: fastddgan/ops/reference.py (same formulas in PyTorch).
//
//   gan_loss(real?, fake, kind, part, clamp) -> (loss, grad_real, grad_fake)
//     loss      = mean_i r(real_i) + mean_j f(fake_j)      (the real term only for part == discriminator)
//     grad_real = r'(real) / n_real,  grad_fake = f'(fake) / n_fake   (d loss / d logit; (0,) without real)
//
// Per-logit terms (V larger on real; s = clamp * tanh(V / clamp) for the exp-based kinds, s = V when clamp <= 0):
//   kind           discriminator r | f             generator non-saturating   generator saturating
//   js          0  softplus(-V)    | softplus(V)   softplus(-V)               -softplus(V)
//   hellinger   1  exp(-s)         | exp(s)        exp(-s)                    -exp(s)
//   rkl         2  exp(-s)         | s             exp(-s)                    -s
//   tv          3  -tanh(V)/2      | tanh(V)/2     -tanh(V)/2                 -tanh(V)/2
//   wasserstein 4  -V              | V             -V                         -V
// Sums accumulate in double; outputs are in the compute dtype (float64 for float64 logits, float32 otherwise).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Optional.h>
#include <math.h>

#include <cstdint>
#include <tuple>

#ifndef FDG_HD
#if defined(__CUDACC__) || defined(__HIPCC__)
#define FDG_HD __host__ __device__ __forceinline__
#else
#define FDG_HD inline
#endif
#endif

namespace fastddgan {

enum GanLossKind : int64_t { kLossJS = 0, kLossHellinger = 1, kLossReverseKL = 2, kLossTV = 3, kLossWasserstein = 4 };
enum GanLossPart : int64_t { kPartDiscriminator = 0, kPartGeneratorNonSaturating = 1, kPartGeneratorSaturating = 2 };
constexpr int64_t kNumLossKinds = 5, kNumLossParts = 3;

namespace lossmath {

FDG_HD float exp_(float x) { return expf(x); }
FDG_HD double exp_(double x) { return exp(x); }
FDG_HD float log1p_(float x) { return log1pf(x); }
FDG_HD double log1p_(double x) { return log1p(x); }
FDG_HD float tanh_(float x) { return tanhf(x); }
FDG_HD double tanh_(double x) { return tanh(x); }

// softplus(x) = log(1 + e^x) without overflow, and its derivative sigmoid(x).
template <typename T>
FDG_HD T softplus(T x) {
  return (x > T(0) ? x : T(0)) + log1p_(exp_(x > T(0) ? -x : x));
}
template <typename T>
FDG_HD T sigmoid(T x) {
  const T e = exp_(x > T(0) ? -x : x);  // in (0, 1]
  return x > T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// 1 - tanh(x)^2 = 4 e / (1 + e)^2 with e = exp(-2|x|): no cancellation where tanh(x) rounds to +-1.
template <typename T>
FDG_HD T sech2(T x) {
  const T e = exp_(T(-2) * (x > T(0) ? x : -x));
  return T(4) * e / ((T(1) + e) * (T(1) + e));
}

}  // namespace lossmath

template <typename T>
struct LossTerm {
  T value, grad;  // the term and its derivative with respect to the logit
};

// s = c tanh(V / c) (soft clamp into (-c, c), ds/dV = 1 - tanh^2), identity when c <= 0.
template <typename T>
FDG_HD LossTerm<T> soft_clamp(T v, T c) {
  if (!(c > T(0))) return {v, T(1)};
  return {c * lossmath::tanh_(v / c), lossmath::sech2(v / c)};
}

// Term of a real logit (only in the discriminator loss).
template <typename T>
FDG_HD LossTerm<T> real_loss_term(int64_t kind, T v, T c) {
  switch (kind) {
    case kLossJS:
      return {lossmath::softplus(-v), -lossmath::sigmoid(-v)};
    case kLossHellinger:
    case kLossReverseKL: {
      const LossTerm<T> s = soft_clamp(v, c);
      const T e = lossmath::exp_(-s.value);
      return {e, -e * s.grad};
    }
    case kLossTV:
      return {T(-0.5) * lossmath::tanh_(v), T(-0.5) * lossmath::sech2(v)};
    default:
      return {-v, T(-1)};
  }
}

// Term of a fake logit for `part`.
template <typename T>
FDG_HD LossTerm<T> fake_loss_term(int64_t kind, int64_t part, T v, T c) {
  switch (kind) {
    case kLossJS:
      if (part == kPartDiscriminator) return {lossmath::softplus(v), lossmath::sigmoid(v)};
      if (part == kPartGeneratorNonSaturating) return {lossmath::softplus(-v), -lossmath::sigmoid(-v)};
      return {-lossmath::softplus(v), -lossmath::sigmoid(v)};
    case kLossHellinger:
    case kLossReverseKL: {
      const LossTerm<T> s = soft_clamp(v, c);
      if (part == kPartGeneratorNonSaturating) {
        const T e = lossmath::exp_(-s.value);
        return {e, -e * s.grad};
      }
      const T sign = part == kPartDiscriminator ? T(1) : T(-1);
      if (kind == kLossReverseKL) return {sign * s.value, sign * s.grad};
      const T e = lossmath::exp_(s.value);
      return {sign * e, sign * e * s.grad};
    }
    case kLossTV: {
      const T half = part == kPartDiscriminator ? T(0.5) : T(-0.5);
      return {half * lossmath::tanh_(v), half * lossmath::sech2(v)};
    }
    default:
      return part == kPartDiscriminator ? LossTerm<T>{v, T(1)} : LossTerm<T>{-v, T(-1)};
  }
}

// ------------------------------------------------------------------------------------------------ host side

struct LossArgs {
  at::Tensor real, fake;             // real undefined for the generator parts
  at::Tensor loss, grad_real, grad_fake;  // outputs, compute dtype
  int64_t kind = 0, part = 0;
  double clamp = 0.0;
};

inline LossArgs prepare_loss_args(const c10::optional<at::Tensor>& real, const at::Tensor& fake, int64_t kind,
                                  int64_t part, double clamp, c10::DeviceType device_type) {
  TORCH_CHECK(kind >= 0 && kind < kNumLossKinds, "fastddgan: gan_loss kind must be in [0, ", kNumLossKinds,
              "), got ", kind);
  TORCH_CHECK(part >= 0 && part < kNumLossParts, "fastddgan: gan_loss part must be in [0, ", kNumLossParts,
              "), got ", part);
  TORCH_CHECK(clamp >= 0.0 && clamp < 1e300, "fastddgan: gan_loss clamp must be finite and >= 0, got ", clamp);
  TORCH_CHECK(fake.device().type() == device_type, "fastddgan: expected logits on ", device_type);
  TORCH_CHECK(fake.dim() == 1 && fake.numel() > 0, "fastddgan: fake logits must be a non-empty 1-D tensor");
  TORCH_CHECK(at::isFloatingType(fake.scalar_type()), "fastddgan: logits must be floating point");
  const bool has_real = real.has_value() && real->defined();
  TORCH_CHECK(has_real == (part == kPartDiscriminator),
              "fastddgan: gan_loss takes real logits for the discriminator part only");
  LossArgs args;
  args.kind = kind;
  args.part = part;
  args.clamp = clamp;
  args.fake = fake.contiguous();
  const auto acc = fake.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto opts = fake.options().dtype(acc);
  if (has_real) {
    TORCH_CHECK(real->dim() == 1 && real->numel() > 0, "fastddgan: real logits must be a non-empty 1-D tensor");
    TORCH_CHECK(real->scalar_type() == fake.scalar_type() && real->device() == fake.device(),
                "fastddgan: real and fake logits must have the same dtype and device");
    args.real = real->contiguous();
    args.grad_real = at::empty({real->numel()}, opts);
  } else {
    args.grad_real = at::empty({0}, opts);
  }
  args.grad_fake = at::empty({fake.numel()}, opts);
  args.loss = at::empty({}, opts);
  return args;
}

// A loss backend is a struct `Kernels` with `static constexpr c10::DeviceType kDevice` and
// `static void run(const LossArgs&)` that fills loss, grad_real and grad_fake; its source file registers
// gan_loss_entry<Kernels> for its dispatch key.
template <class Kernels>
std::tuple<at::Tensor, at::Tensor, at::Tensor> gan_loss_entry(const c10::optional<at::Tensor>& real,
                                                              const at::Tensor& fake, int64_t kind, int64_t part,
                                                              double clamp) {
  const LossArgs args = prepare_loss_args(real, fake, kind, part, clamp, Kernels::kDevice);
  Kernels::run(args);
  return std::make_tuple(args.loss, args.grad_real, args.grad_fake);
}

}  // namespace fastddgan
