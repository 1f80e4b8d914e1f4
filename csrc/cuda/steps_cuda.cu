// CUDA kernels of the fused ops (affine_noise, ddpm_step, q_sample_pairs; philox_words), registered for the CUDA
// dispatch key at the bottom: one pass over the inputs, noise drawn in-kernel.
//
// One thread per item, i.e. Philox counter c of sample b (elements 4c..4c+3 of the sample; 16-byte vector loads
// when every sample's size is a multiple of 4 and the pointers are aligned), grid-stride loop. The seed
// [key, sample_offset] is read from device memory inside the kernel, so a captured CUDA graph draws fresh noise on
// every replay once the seed tensor is refreshed by a (captured) torch RNG call; t is read on the device too.
// An expanded scalar `a` (StepArgs::a_scalar, e.g. the zero of fastddgan.ops.normal) is read as a[0].
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAMacros.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <torch/library.h>

#include <algorithm>
#include <mutex>

#include "../common/step_args.h"

namespace fastddgan {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
struct alignas(4 * sizeof(scalar_t)) Vec4 {
  scalar_t v[4];
};

template <int ROWS, typename acc_t>
__device__ __forceinline__ void load_coef(const acc_t* __restrict__ table, const int64_t* __restrict__ t,
                                          int64_t sample, int64_t steps, acc_t* coef) {
  const int64_t step = clamp_step(t[sample], steps);
#pragma unroll
  for (int r = 0; r < ROWS; ++r) coef[r] = table[r * steps + step];
}

template <bool VEC, typename Op, typename scalar_t, typename acc_t>
__global__ void step_kernel(Op op, const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                            const scalar_t* __restrict__ noise, const int64_t* __restrict__ seed,
                            const int64_t* __restrict__ t, const acc_t* __restrict__ table,
                            scalar_t* __restrict__ out, int64_t n_items, int64_t per_sample, int64_t inner,
                            int64_t steps, bool a_scalar) {
  const uint64_t key = noise == nullptr ? static_cast<uint64_t>(seed[0]) : 0ull;
  const uint64_t sample_offset = noise == nullptr ? static_cast<uint64_t>(seed[1]) : 0ull;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t item = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; item < n_items; item += stride) {
    const int64_t sample = item / per_sample, counter = item - sample * per_sample;
    const int64_t i0 = sample * inner + 4 * counter;
    float gen[4];
    if (noise == nullptr) {  // Philox counter (c, b + sample_offset): see fastddgan/ops/philox.py
      normal4(key, ((static_cast<uint64_t>(sample) + sample_offset) << 32) | static_cast<uint64_t>(counter), gen);
    }
    acc_t coef[Op::kRows];
    load_coef<Op::kRows>(table, t, sample, steps, coef);
    if constexpr (VEC) {  // inner % 4 == 0: all 4 lanes are elements, contiguous and aligned
      Vec4<scalar_t> av, bv{}, nv{}, ov;
      if (a_scalar) {
#pragma unroll
        for (int k = 0; k < 4; ++k) av.v[k] = a[0];
      } else {
        av = *reinterpret_cast<const Vec4<scalar_t>*>(a + i0);
      }
      if constexpr (Op::kHasB) bv = *reinterpret_cast<const Vec4<scalar_t>*>(b + i0);
      if (noise != nullptr) nv = *reinterpret_cast<const Vec4<scalar_t>*>(noise + i0);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const acc_t nk = noise != nullptr ? static_cast<acc_t>(nv.v[k]) : static_cast<acc_t>(gen[k]);
        ov.v[k] = static_cast<scalar_t>(op(coef, static_cast<acc_t>(av.v[k]), static_cast<acc_t>(bv.v[k]), nk));
      }
      *reinterpret_cast<Vec4<scalar_t>*>(out + i0) = ov;
    } else {
      const int lanes = static_cast<int>(inner - 4 * counter < 4 ? inner - 4 * counter : 4);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if (k < lanes) {
          const int64_t i = i0 + k;
          acc_t bk = acc_t(0);
          if constexpr (Op::kHasB) bk = static_cast<acc_t>(b[i]);
          const acc_t nk = noise != nullptr ? static_cast<acc_t>(noise[i]) : static_cast<acc_t>(gen[k]);
          out[i] = static_cast<scalar_t>(op(coef, static_cast<acc_t>(a[a_scalar ? 0 : i]), bk, nk));
        }
      }
    }
  }
}

// The multiprocessor count of `device`, asked of the driver once per device (not on every launch).
int multiprocessor_count(int device) {
  static std::once_flag once[C10_COMPILE_TIME_MAX_GPUS];
  static int count[C10_COMPILE_TIME_MAX_GPUS];
  TORCH_CHECK(device >= 0 && device < C10_COMPILE_TIME_MAX_GPUS, "fastddgan: bad CUDA device index ", device);
  std::call_once(once[device], [device] {
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&count[device], cudaDevAttrMultiProcessorCount, device));
  });
  return count[device];
}

template <typename scalar_t>
bool aligned16(const at::Tensor& x) {
  return !x.defined() || reinterpret_cast<uintptr_t>(x.const_data_ptr()) % sizeof(Vec4<scalar_t>) == 0;
}

template <typename Op, typename scalar_t>
void launch_step(const StepArgs& args, const Op& op) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t numel = args.a.numel();
  if (numel == 0) return;
  const int64_t per_sample = (args.inner + 3) / 4;
  const int64_t n_items = args.batch * per_sample;
  const int sms = multiprocessor_count(args.a.get_device());
  const int64_t blocks = std::min<int64_t>((n_items + kThreads - 1) / kThreads, static_cast<int64_t>(sms) * 32);
  const bool vec = args.inner % 4 == 0 && (args.a_scalar || aligned16<scalar_t>(args.a)) &&
                   aligned16<scalar_t>(args.b) && aligned16<scalar_t>(args.noise) && aligned16<scalar_t>(args.out);
  const scalar_t* b = args.b.defined() ? args.b.const_data_ptr<scalar_t>() : nullptr;
  const scalar_t* noise = args.noise.defined() ? args.noise.const_data_ptr<scalar_t>() : nullptr;
  const int64_t* seed = args.seed.defined() ? args.seed.const_data_ptr<int64_t>() : nullptr;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  auto kernel = vec ? step_kernel<true, Op, scalar_t, acc_t> : step_kernel<false, Op, scalar_t, acc_t>;
  kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      op, args.a.const_data_ptr<scalar_t>(), b, noise, seed, args.t.const_data_ptr<int64_t>(),
      args.table.const_data_ptr<acc_t>(), args.out.mutable_data_ptr<scalar_t>(), n_items, per_sample, args.inner,
      args.steps, args.a_scalar);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// q_sample_pairs: one thread per item as above, both noises drawn in-kernel (row i of the seed for noise i), x_t
// computed from x_prev as stored, each member through the affine op of the two calls the op replaces.
template <bool VEC, typename scalar_t, typename acc_t>
__global__ void pair_kernel(const scalar_t* __restrict__ x0, const scalar_t* __restrict__ noise_prev,
                            const scalar_t* __restrict__ noise_step, const int64_t* __restrict__ seed,
                            const int64_t* __restrict__ t, const acc_t* __restrict__ table,
                            scalar_t* __restrict__ x_prev, scalar_t* __restrict__ x_t, int64_t n_items,
                            int64_t per_sample, int64_t inner, int64_t steps) {
  const bool explicit_noise = noise_prev != nullptr;
  const uint64_t key_prev = explicit_noise ? 0ull : static_cast<uint64_t>(seed[0]);
  const uint64_t offset_prev = explicit_noise ? 0ull : static_cast<uint64_t>(seed[1]);
  const uint64_t key_step = explicit_noise ? 0ull : static_cast<uint64_t>(seed[2]);
  const uint64_t offset_step = explicit_noise ? 0ull : static_cast<uint64_t>(seed[3]);
  const AffineNoiseOp<false> op;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t item = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; item < n_items; item += stride) {
    const int64_t sample = item / per_sample, counter = item - sample * per_sample;
    const int64_t i0 = sample * inner + 4 * counter;
    float gen_prev[4], gen_step[4];
    if (!explicit_noise) {  // Philox counter (c, b + sample_offset) of each noise's key: see fastddgan/ops/philox.py
      normal4(key_prev, ((static_cast<uint64_t>(sample) + offset_prev) << 32) | static_cast<uint64_t>(counter),
              gen_prev);
      normal4(key_step, ((static_cast<uint64_t>(sample) + offset_step) << 32) | static_cast<uint64_t>(counter),
              gen_step);
    }
    acc_t coef[4];
    load_coef<4>(table, t, sample, steps, coef);
    const acc_t prev[3] = {coef[0], acc_t(0), coef[1]}, step[3] = {coef[2], acc_t(0), coef[3]};
    if constexpr (VEC) {  // inner % 4 == 0: all 4 lanes are elements, contiguous and aligned
      const Vec4<scalar_t> xv = *reinterpret_cast<const Vec4<scalar_t>*>(x0 + i0);
      Vec4<scalar_t> npv{}, nsv{}, pv, tv;
      if (explicit_noise) {
        npv = *reinterpret_cast<const Vec4<scalar_t>*>(noise_prev + i0);
        nsv = *reinterpret_cast<const Vec4<scalar_t>*>(noise_step + i0);
      }
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const acc_t np = explicit_noise ? static_cast<acc_t>(npv.v[k]) : static_cast<acc_t>(gen_prev[k]);
        const acc_t ns = explicit_noise ? static_cast<acc_t>(nsv.v[k]) : static_cast<acc_t>(gen_step[k]);
        pv.v[k] = static_cast<scalar_t>(op(prev, static_cast<acc_t>(xv.v[k]), acc_t(0), np));
        tv.v[k] = static_cast<scalar_t>(op(step, static_cast<acc_t>(pv.v[k]), acc_t(0), ns));
      }
      *reinterpret_cast<Vec4<scalar_t>*>(x_prev + i0) = pv;
      *reinterpret_cast<Vec4<scalar_t>*>(x_t + i0) = tv;
    } else {
      const int lanes = static_cast<int>(inner - 4 * counter < 4 ? inner - 4 * counter : 4);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if (k < lanes) {
          const int64_t i = i0 + k;
          const acc_t np = explicit_noise ? static_cast<acc_t>(noise_prev[i]) : static_cast<acc_t>(gen_prev[k]);
          const acc_t ns = explicit_noise ? static_cast<acc_t>(noise_step[i]) : static_cast<acc_t>(gen_step[k]);
          const scalar_t p = static_cast<scalar_t>(op(prev, static_cast<acc_t>(x0[i]), acc_t(0), np));
          x_prev[i] = p;
          x_t[i] = static_cast<scalar_t>(op(step, static_cast<acc_t>(p), acc_t(0), ns));
        }
      }
    }
  }
}

template <typename scalar_t>
void launch_pairs(const PairArgs& args) {
  using acc_t = at::opmath_type<scalar_t>;
  if (args.x0.numel() == 0) return;
  const int64_t per_sample = (args.inner + 3) / 4;
  const int64_t n_items = args.batch * per_sample;
  const int sms = multiprocessor_count(args.x0.get_device());
  const int64_t blocks = std::min<int64_t>((n_items + kThreads - 1) / kThreads, static_cast<int64_t>(sms) * 32);
  const bool vec = args.inner % 4 == 0 && aligned16<scalar_t>(args.x0) && aligned16<scalar_t>(args.noise_prev) &&
                   aligned16<scalar_t>(args.noise_step) && aligned16<scalar_t>(args.x_prev) &&
                   aligned16<scalar_t>(args.x_t);
  const bool explicit_noise = args.noise_prev.defined();
  const scalar_t* noise_prev = explicit_noise ? args.noise_prev.const_data_ptr<scalar_t>() : nullptr;
  const scalar_t* noise_step = explicit_noise ? args.noise_step.const_data_ptr<scalar_t>() : nullptr;
  const int64_t* seed = explicit_noise ? nullptr : args.seed.const_data_ptr<int64_t>();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  auto kernel = vec ? pair_kernel<true, scalar_t, acc_t> : pair_kernel<false, scalar_t, acc_t>;
  kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      args.x0.const_data_ptr<scalar_t>(), noise_prev, noise_step, seed, args.t.const_data_ptr<int64_t>(),
      args.table.const_data_ptr<acc_t>(), args.x_prev.mutable_data_ptr<scalar_t>(),
      args.x_t.mutable_data_ptr<scalar_t>(), n_items, per_sample, args.inner, args.steps);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

// The CUDA backend of the step entry points (csrc/common/step_args.h).
struct CudaKernels {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CUDA;
  template <typename Op>
  static void run(const StepArgs& args, const Op& op);
  static void philox_words(const at::Tensor& counters, uint32_t k0, uint32_t k1, at::Tensor& out);
  static void run_pairs(const PairArgs& args);
};

void CudaKernels::run_pairs(const PairArgs& args) {
  const c10::cuda::CUDAGuard guard(args.x0.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.x0.scalar_type(), "fastddgan_pairs_cuda",
                                  [&] { launch_pairs<scalar_t>(args); });
}

template <typename Op>
void CudaKernels::run(const StepArgs& args, const Op& op) {
  const c10::cuda::CUDAGuard guard(args.a.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.a.scalar_type(), "fastddgan_step_cuda",
                                  [&] { launch_step<Op, scalar_t>(args, op); });
}

namespace {

__global__ void philox_words_kernel(const int64_t* __restrict__ counters, uint32_t k0, uint32_t k1,
                                    int64_t* __restrict__ words, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const uint32_t ctr[4] = {static_cast<uint32_t>(counters[4 * i]), static_cast<uint32_t>(counters[4 * i + 1]),
                           static_cast<uint32_t>(counters[4 * i + 2]), static_cast<uint32_t>(counters[4 * i + 3])};
  uint32_t r[4];
  philox4x32_10_words(ctr, k0, k1, r);
#pragma unroll
  for (int j = 0; j < 4; ++j) words[4 * i + j] = static_cast<int64_t>(r[j]);
}

}  // namespace

void CudaKernels::philox_words(const at::Tensor& counters, uint32_t k0, uint32_t k1, at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(counters.device());
  const int64_t n = counters.size(0);
  if (n == 0) return;
  philox_words_kernel<<<static_cast<unsigned>((n + kThreads - 1) / kThreads), kThreads, 0,
                        c10::cuda::getCurrentCUDAStream()>>>(counters.const_data_ptr<int64_t>(), k0, k1,
                                                             out.mutable_data_ptr<int64_t>(), n);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

TORCH_LIBRARY_IMPL(fastddgan, CUDA, m) {
  m.impl("affine_noise", TORCH_FN(affine_noise_entry<CudaKernels>));
  m.impl("ddpm_step", TORCH_FN(ddpm_step_entry<CudaKernels>));
  m.impl("q_sample_pairs", TORCH_FN(q_sample_pairs_entry<CudaKernels>));
  m.impl("philox_words", TORCH_FN(philox_words_entry<CudaKernels>));
}

}  // namespace fastddgan
