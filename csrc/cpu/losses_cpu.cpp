// CPU kernel of the fused GAN loss, registered for the CPU dispatch key at the bottom: one pass over the logits
// writes each logit's gradient and sums the loss terms.
//
// The logits are cut into fixed chunks of kChunk, taken by at::parallel_for; each chunk sums its terms in double in
// index order, and the chunks' sums are added in chunk order: the result depends on the logits only, not on the
// number of threads (and for up to kChunk logits, one chunk, it is the plain index-order sum). Discriminator batches
// are usually far below kChunk: one thread, no threading overhead.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../common/gan_losses.h"

namespace fastddgan {
namespace {

constexpr int64_t kChunk = 4096;  // logits per chunk: the unit of work and of the fixed-order sum

// Writes term'(x_i) / n to grad and returns sum_i term(x_i) / n, summed per chunk, then over the chunks in order.
template <typename scalar_t, typename acc_t, typename TermFn>
double reduce_terms(const scalar_t* __restrict x, int64_t n, acc_t* __restrict grad, const TermFn& term) {
  const acc_t inv_n = acc_t(1) / static_cast<acc_t>(n);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      double sum = 0.0;
      for (int64_t i = chunk * kChunk, stop = std::min(n, i + kChunk); i < stop; ++i) {
        const LossTerm<acc_t> r = term(static_cast<acc_t>(x[i]));
        sum += static_cast<double>(r.value);
        grad[i] = r.grad * inv_n;
      }
      partial[static_cast<size_t>(chunk)] = sum;
    }
  });
  double sum = 0.0;
  for (const double s : partial) sum += s;
  return sum / static_cast<double>(n);
}

template <typename scalar_t>
void run_loss(const LossArgs& args) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t kind = args.kind, part = args.part;
  const acc_t clamp = static_cast<acc_t>(args.clamp);
  double loss = reduce_terms<scalar_t, acc_t>(
      args.fake.const_data_ptr<scalar_t>(), args.fake.numel(), args.grad_fake.mutable_data_ptr<acc_t>(),
      [&](acc_t v) { return fake_loss_term(kind, part, v, clamp); });
  if (args.real.defined()) {
    loss += reduce_terms<scalar_t, acc_t>(
        args.real.const_data_ptr<scalar_t>(), args.real.numel(), args.grad_real.mutable_data_ptr<acc_t>(),
        [&](acc_t v) { return real_loss_term(kind, v, clamp); });
  }
  *args.loss.mutable_data_ptr<acc_t>() = static_cast<acc_t>(loss);
}

struct CpuLossKernels {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CPU;
  static void run(const LossArgs& args);
};

void CpuLossKernels::run(const LossArgs& args) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.fake.scalar_type(), "fastddgan_gan_loss_cpu",
                                  [&] { run_loss<scalar_t>(args); });
}

}  // namespace

TORCH_LIBRARY_IMPL(fastddgan, CPU, m) { m.impl("gan_loss", TORCH_FN(gan_loss_entry<CpuLossKernels>)); }

}  // namespace fastddgan
