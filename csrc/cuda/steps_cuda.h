// The CUDA backend of the fused ops: kernels in steps_cuda.cu, entry points bound in bindings.cpp.
#pragma once

#include "../common/step_args.h"

namespace fastddgan {

struct CudaKernels {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CUDA;
  template <typename Op>
  static void run(const StepArgs& args, const Op& op);
  static void philox_words(const at::Tensor& counters, uint32_t k0, uint32_t k1, at::Tensor& out);
};

}  // namespace fastddgan
