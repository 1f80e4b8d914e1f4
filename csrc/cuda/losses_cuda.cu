// CUDA kernel of the fused GAN loss: one block reads every logit once, writes its gradient and reduces the loss.
//
// Discriminator logits are one per sample (B is small, typically <= 1024), so a single block of kThreads threads
// covers the batch with a block-stride loop (any B works) and reduces the per-thread sums in shared memory in a
// fixed tree order: the result is deterministic (no atomics) and the launch is CUDA-graph capturable.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include "losses_cuda.h"

namespace fastddgan {
namespace {

constexpr int kThreads = 256;  // a power of two (tree reduction)

template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    gan_loss_kernel(const scalar_t* __restrict__ real, int64_t n_real, const scalar_t* __restrict__ fake,
                    int64_t n_fake, int64_t kind, int64_t part, acc_t clamp, acc_t* __restrict__ loss,
                    acc_t* __restrict__ grad_real, acc_t* __restrict__ grad_fake) {
  __shared__ double sum_real[kThreads], sum_fake[kThreads];
  const int tid = threadIdx.x;
  double sr = 0.0, sf = 0.0;
  if (real != nullptr) {
    const acc_t inv_n = acc_t(1) / static_cast<acc_t>(n_real);
    for (int64_t i = tid; i < n_real; i += kThreads) {
      const LossTerm<acc_t> r = real_loss_term(kind, static_cast<acc_t>(real[i]), clamp);
      sr += static_cast<double>(r.value);
      grad_real[i] = r.grad * inv_n;
    }
  }
  const acc_t inv_n = acc_t(1) / static_cast<acc_t>(n_fake);
  for (int64_t i = tid; i < n_fake; i += kThreads) {
    const LossTerm<acc_t> f = fake_loss_term(kind, part, static_cast<acc_t>(fake[i]), clamp);
    sf += static_cast<double>(f.value);
    grad_fake[i] = f.grad * inv_n;
  }
  sum_real[tid] = sr;
  sum_fake[tid] = sf;
  __syncthreads();
#pragma unroll
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (tid < width) {
      sum_real[tid] += sum_real[tid + width];
      sum_fake[tid] += sum_fake[tid + width];
    }
    __syncthreads();
  }
  if (tid == 0) {
    double total = sum_fake[0] / static_cast<double>(n_fake);
    if (real != nullptr) total += sum_real[0] / static_cast<double>(n_real);
    *loss = static_cast<acc_t>(total);
  }
}

template <typename scalar_t>
void launch_loss(const LossArgs& args) {
  using acc_t = at::opmath_type<scalar_t>;
  const bool has_real = args.real.defined();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  gan_loss_kernel<scalar_t, acc_t><<<1, kThreads, 0, stream>>>(
      has_real ? args.real.const_data_ptr<scalar_t>() : nullptr, has_real ? args.real.numel() : 0,
      args.fake.const_data_ptr<scalar_t>(), args.fake.numel(), args.kind, args.part,
      static_cast<acc_t>(args.clamp), args.loss.mutable_data_ptr<acc_t>(),
      has_real ? args.grad_real.mutable_data_ptr<acc_t>() : nullptr, args.grad_fake.mutable_data_ptr<acc_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

void CudaLossKernels::run(const LossArgs& args) {
  const c10::cuda::CUDAGuard guard(args.fake.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.fake.scalar_type(), "fastddgan_gan_loss_cuda",
                                  [&] { launch_loss<scalar_t>(args); });
}

}  // namespace fastddgan
