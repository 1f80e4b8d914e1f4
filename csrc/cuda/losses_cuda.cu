// CUDA kernels of the fused GAN loss, registered for the CUDA dispatch key at the bottom: every logit is read once, its gradient written, and the loss reduced.
//
// A grid of up to kMaxBlocks blocks of kThreads threads covers both batches (grid-stride loops, any size); each
// block sums its loss terms in double and reduces them in shared memory in a fixed tree order. One block writes
// the loss itself (the usual case: discriminator logits are one per sample); with more, the blocks write partial
// sums and one block of a second kernel adds them in a fixed order. The block count depends only on the batch
// sizes, so the result is deterministic (no atomics) on any GPU, and both launches are CUDA-graph capturable.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <torch/library.h>

#include <algorithm>

#include "../common/gan_losses.h"

namespace fastddgan {
namespace {

constexpr int kThreads = 256;     // a power of two (tree reduction)
constexpr int kMaxBlocks = 1024;  // partial sums the second kernel adds (4 per thread at most)

// The block-wide sums of a and b (fixed tree order), valid in thread 0.
__device__ __forceinline__ void block_sum2(double& a, double& b) {
  __shared__ double sum_a[kThreads], sum_b[kThreads];
  const int tid = threadIdx.x;
  sum_a[tid] = a;
  sum_b[tid] = b;
  __syncthreads();
#pragma unroll
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (tid < width) {
      sum_a[tid] += sum_a[tid + width];
      sum_b[tid] += sum_b[tid + width];
    }
    __syncthreads();
  }
  a = sum_a[0];
  b = sum_b[0];
}

// loss = sum_real / n_real + sum_fake / n_fake (the real term only when there are real logits).
template <typename acc_t>
__device__ __forceinline__ void write_loss(double sum_real, int64_t n_real, double sum_fake, int64_t n_fake,
                                           acc_t* loss) {
  double total = sum_fake / static_cast<double>(n_fake);
  if (n_real > 0) total += sum_real / static_cast<double>(n_real);
  *loss = static_cast<acc_t>(total);
}

template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    gan_loss_kernel(const scalar_t* __restrict__ real, int64_t n_real, const scalar_t* __restrict__ fake,
                    int64_t n_fake, int64_t kind, int64_t part, acc_t clamp, acc_t* __restrict__ loss,
                    acc_t* __restrict__ grad_real, acc_t* __restrict__ grad_fake, double* __restrict__ partial) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  double sr = 0.0, sf = 0.0;
  if (real != nullptr) {
    const acc_t inv_n = acc_t(1) / static_cast<acc_t>(n_real);
    for (int64_t i = first; i < n_real; i += stride) {
      const LossTerm<acc_t> r = real_loss_term(kind, static_cast<acc_t>(real[i]), clamp);
      sr += static_cast<double>(r.value);
      grad_real[i] = r.grad * inv_n;
    }
  }
  const acc_t inv_n = acc_t(1) / static_cast<acc_t>(n_fake);
  for (int64_t i = first; i < n_fake; i += stride) {
    const LossTerm<acc_t> f = fake_loss_term(kind, part, static_cast<acc_t>(fake[i]), clamp);
    sf += static_cast<double>(f.value);
    grad_fake[i] = f.grad * inv_n;
  }
  block_sum2(sr, sf);
  if (threadIdx.x == 0) {
    if (gridDim.x == 1) {
      write_loss(sr, real != nullptr ? n_real : 0, sf, n_fake, loss);
    } else {
      partial[blockIdx.x] = sr;
      partial[gridDim.x + blockIdx.x] = sf;
    }
  }
}

// One block: the blocks' partial sums (real ones, then fake ones) added in a fixed order.
template <typename acc_t>
__global__ void __launch_bounds__(kThreads)
    gan_loss_finish_kernel(const double* __restrict__ partial, int blocks, int64_t n_real, int64_t n_fake,
                           acc_t* __restrict__ loss) {
  double sr = 0.0, sf = 0.0;
  for (int i = threadIdx.x; i < blocks; i += kThreads) {
    sr += partial[i];
    sf += partial[blocks + i];
  }
  block_sum2(sr, sf);
  if (threadIdx.x == 0) write_loss(sr, n_real, sf, n_fake, loss);
}

template <typename scalar_t>
void launch_loss(const LossArgs& args) {
  using acc_t = at::opmath_type<scalar_t>;
  const bool has_real = args.real.defined();
  const int64_t n_real = has_real ? args.real.numel() : 0, n_fake = args.fake.numel();
  const int blocks = static_cast<int>(
      std::min<int64_t>((std::max(n_real, n_fake) + kThreads - 1) / kThreads, kMaxBlocks));
  const at::Tensor partial = blocks > 1 ? at::empty({2 * blocks}, args.fake.options().dtype(at::kDouble))
                                        : at::Tensor();
  double* partial_ptr = blocks > 1 ? partial.mutable_data_ptr<double>() : nullptr;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  gan_loss_kernel<scalar_t, acc_t><<<blocks, kThreads, 0, stream>>>(
      has_real ? args.real.const_data_ptr<scalar_t>() : nullptr, n_real, args.fake.const_data_ptr<scalar_t>(),
      n_fake, args.kind, args.part, static_cast<acc_t>(args.clamp), args.loss.mutable_data_ptr<acc_t>(),
      has_real ? args.grad_real.mutable_data_ptr<acc_t>() : nullptr, args.grad_fake.mutable_data_ptr<acc_t>(),
      partial_ptr);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (blocks > 1) {
    gan_loss_finish_kernel<acc_t><<<1, kThreads, 0, stream>>>(partial_ptr, blocks, n_real, n_fake,
                                                              args.loss.mutable_data_ptr<acc_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

struct CudaLossKernels {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CUDA;
  static void run(const LossArgs& args);
};

void CudaLossKernels::run(const LossArgs& args) {
  const c10::cuda::CUDAGuard guard(args.fake.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.fake.scalar_type(), "fastddgan_gan_loss_cuda",
                                  [&] { launch_loss<scalar_t>(args); });
}

}  // namespace

TORCH_LIBRARY_IMPL(fastddgan, CUDA, m) { m.impl("gan_loss", TORCH_FN(gan_loss_entry<CudaLossKernels>)); }

}  // namespace fastddgan
