// The CUDA backend of the fused ops: kernels in steps_cuda.cu, entry points bound in bindings.cpp.
#pragma once

#include "../common/step_args.h"

namespace fastddgan {

struct CudaKernels {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CUDA;
  template <typename Op>
  static void run(const StepArgs& args, const Op& op);
};

}  // namespace fastddgan
