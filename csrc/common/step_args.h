// Host-side checks and output allocation shared by the CPU and CUDA entry points of the fused ops.
// The Python layer (fastddgan/ops/__init__.py) already gives users clear errors; these TORCH_CHECKs guard the
// kernels against direct calls of torch.ops.fastddgan.* (from Python or C++).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Optional.h>

#include <tuple>

#include "step_ops.h"

namespace fastddgan {

// What the step ops share: one timestep per sample, a (rows, T) coefficient table, the data's batch and per-sample
// size.
struct StepCommon {
  at::Tensor t, table;
  int64_t batch = 0, inner = 0, steps = 0;
};

struct StepArgs : StepCommon {
  at::Tensor a, b, noise, seed, out;  // b, noise, seed may be undefined
  bool a_scalar = false;  // a is one value expanded to the shape (every stride 0): the kernels read a[0] only
};

// The checks of the data `x`, `t` and the table every step op makes, and the common part of its arguments.
inline void prepare_common(StepCommon& args, const at::Tensor& x, const at::Tensor& t, const at::Tensor& table,
                           int64_t rows, c10::DeviceType device_type) {
  TORCH_CHECK(x.device().type() == device_type, "fastddgan: expected tensors on ", device_type);
  TORCH_CHECK(x.dim() >= 1 && x.size(0) == t.numel(), "fastddgan: t must hold one step per sample");
  TORCH_CHECK(t.scalar_type() == at::kLong && t.dim() == 1, "fastddgan: t must be a 1-D int64 tensor");
  TORCH_CHECK(table.dim() == 2 && table.size(0) == rows && table.size(1) >= 1,
              "fastddgan: coefficient table must have shape (", rows, ", T)");
  const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK(table.scalar_type() == acc, "fastddgan: table dtype must be ", acc);
  args.t = t.to(x.device()).contiguous();
  args.table = table.to(x.device()).contiguous();
  args.batch = x.size(0);
  args.inner = args.batch > 0 ? x.numel() / args.batch : 0;
  args.steps = table.size(1);
}

// A new contiguous output shaped like `x`.
inline at::Tensor empty_output(const at::Tensor& x) {
  return at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
}

// One element expanded to a larger shape (x.expand(shape) of a one-element tensor): read in place, not copied.
inline bool is_expanded_scalar(const at::Tensor& x) {
  if (x.numel() <= 1) return false;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.size(d) > 1 && x.stride(d) != 0) return false;
  }
  return true;
}

inline StepArgs prepare_step_args(const at::Tensor& a, const c10::optional<at::Tensor>& b, const at::Tensor& t,
                                  const at::Tensor& table, const c10::optional<at::Tensor>& noise,
                                  const c10::optional<at::Tensor>& seed, int64_t rows, bool needs_b,
                                  c10::DeviceType device_type) {
  StepArgs args;
  prepare_common(args, a, t, table, rows, device_type);
  TORCH_CHECK(!needs_b || (b.has_value() && b->defined()), "fastddgan: this op needs its second tensor");
  TORCH_CHECK(noise.has_value() != seed.has_value(), "fastddgan: give exactly one of noise and seed");
  args.a_scalar = is_expanded_scalar(a);
  args.a = args.a_scalar ? a : a.contiguous();
  if (b.has_value() && b->defined()) {
    TORCH_CHECK(b->sizes() == a.sizes() && b->scalar_type() == a.scalar_type() && b->device() == a.device(),
                "fastddgan: second tensor must match the first in shape, dtype and device");
    args.b = b->contiguous();
  }
  if (noise.has_value()) {
    TORCH_CHECK(noise->sizes() == a.sizes() && noise->device() == a.device(),
                "fastddgan: noise must match the data in shape and device");
    args.noise = noise->to(a.scalar_type()).contiguous();
  } else {
    TORCH_CHECK(seed->scalar_type() == at::kLong && seed->numel() == 2 && seed->device() == a.device(),
                "fastddgan: seed must be an int64 tensor [key, sample_offset] on the data's device");
    args.seed = seed->contiguous();
  }
  args.out = empty_output(a);
  return args;
}

// The entry points of a backend, which its source file registers for its dispatch key (TORCH_LIBRARY_IMPL): check
// the arguments, then run the backend's kernel for the op variant. A backend is a struct `Kernels` with
// `static constexpr c10::DeviceType kDevice` and `template <class Op> static void run(const StepArgs&, const Op&)`
// that fills args.out (Op: AffineNoiseOp<HAS_B> or DdpmStepOp<CLIP>).
template <class Kernels>
at::Tensor affine_noise_entry(const at::Tensor& a, const c10::optional<at::Tensor>& b, const at::Tensor& t,
                              const at::Tensor& table, const c10::optional<at::Tensor>& noise,
                              const c10::optional<at::Tensor>& seed) {
  const StepArgs args = prepare_step_args(a, b, t, table, noise, seed, 3, false, Kernels::kDevice);
  if (args.b.defined()) {
    Kernels::run(args, AffineNoiseOp<true>{});
  } else {
    Kernels::run(args, AffineNoiseOp<false>{});
  }
  return args.out;
}

template <class Kernels>
at::Tensor ddpm_step_entry(const at::Tensor& eps, const at::Tensor& x_t, const at::Tensor& t,
                           const at::Tensor& table, const c10::optional<at::Tensor>& noise,
                           const c10::optional<at::Tensor>& seed, bool clip_x0) {
  const StepArgs args = prepare_step_args(eps, x_t, t, table, noise, seed, 5, true, Kernels::kDevice);
  if (clip_x0) {
    Kernels::run(args, DdpmStepOp<true>{});
  } else {
    Kernels::run(args, DdpmStepOp<false>{});
  }
  return args.out;
}

// q_sample_pairs(x0, t, table, noise_prev?, noise_step?, seed?) -> (x_prev, x_t): a true pair in one pass,
//   x_prev = table[0, t] x0 + table[1, t] noise_prev, x_t = table[2, t] x_prev + table[3, t] noise_step,
// x_t computed from x_prev as stored (rounded to the data dtype), i.e. exactly the two affine_noise calls
// affine(q_prev) then affine(q_step) it replaces. Either both noises or seed, an int64 tensor (2, 2) whose row i is
// the [key, sample_offset] of noise i (the two keys the two calls drew, in the same order). A backend provides
// `static void run_pairs(const PairArgs&)` filling args.x_prev and args.x_t.
struct PairArgs : StepCommon {
  at::Tensor x0, noise_prev, noise_step, seed, x_prev, x_t;  // noises or seed undefined
};

inline PairArgs prepare_pair_args(const at::Tensor& x0, const at::Tensor& t, const at::Tensor& table,
                                  const c10::optional<at::Tensor>& noise_prev,
                                  const c10::optional<at::Tensor>& noise_step, const c10::optional<at::Tensor>& seed,
                                  c10::DeviceType device_type) {
  PairArgs args;
  prepare_common(args, x0, t, table, 4, device_type);
  TORCH_CHECK(noise_prev.has_value() == noise_step.has_value(), "fastddgan: give both noises or neither");
  TORCH_CHECK(noise_prev.has_value() != seed.has_value(), "fastddgan: give exactly one of the noises and seed");
  args.x0 = x0.contiguous();
  if (noise_prev.has_value()) {
    for (const at::Tensor* noise : {&*noise_prev, &*noise_step}) {
      TORCH_CHECK(noise->sizes() == x0.sizes() && noise->device() == x0.device(),
                  "fastddgan: noise must match the data in shape and device");
    }
    args.noise_prev = noise_prev->to(x0.scalar_type()).contiguous();
    args.noise_step = noise_step->to(x0.scalar_type()).contiguous();
  } else {
    TORCH_CHECK(seed->scalar_type() == at::kLong && seed->dim() == 2 && seed->size(0) == 2 && seed->size(1) == 2 &&
                    seed->device() == x0.device(),
                "fastddgan: seed must be an int64 tensor (2, 2) of [key, sample_offset] rows on the data's device");
    args.seed = seed->contiguous();
  }
  args.x_prev = empty_output(x0);
  args.x_t = empty_output(x0);
  return args;
}

template <class Kernels>
std::tuple<at::Tensor, at::Tensor> q_sample_pairs_entry(const at::Tensor& x0, const at::Tensor& t,
                                                        const at::Tensor& table,
                                                        const c10::optional<at::Tensor>& noise_prev,
                                                        const c10::optional<at::Tensor>& noise_step,
                                                        const c10::optional<at::Tensor>& seed) {
  const PairArgs args = prepare_pair_args(x0, t, table, noise_prev, noise_step, seed, Kernels::kDevice);
  Kernels::run_pairs(args);
  return {args.x_prev, args.x_t};
}

// philox_words(counters, key) -> words: the raw Philox4x32-10 output of each row of counters (N, 4) under the key
// words (k0, k1), all uint32 values held in int64 tensors; the known-answer tests read it. A backend provides
// `static void philox_words(const at::Tensor& counters, uint32_t k0, uint32_t k1, at::Tensor& out)`.
template <class Kernels>
at::Tensor philox_words_entry(const at::Tensor& counters, const at::Tensor& key) {
  TORCH_CHECK(counters.scalar_type() == at::kLong && counters.dim() == 2 && counters.size(1) == 4,
              "fastddgan: counters must be an int64 tensor of shape (N, 4)");
  TORCH_CHECK(counters.device().type() == Kernels::kDevice, "fastddgan: expected counters on ", Kernels::kDevice);
  TORCH_CHECK(key.scalar_type() == at::kLong && key.numel() == 2, "fastddgan: key must be two int64 words (k0, k1)");
  const at::Tensor key_words = key.cpu();  // a test helper: reading the key on the host is fine
  const int64_t* k = key_words.const_data_ptr<int64_t>();
  at::Tensor words = at::empty_like(counters, at::MemoryFormat::Contiguous);
  Kernels::philox_words(counters.contiguous(), static_cast<uint32_t>(k[0]), static_cast<uint32_t>(k[1]), words);
  return words;
}

}  // namespace fastddgan
