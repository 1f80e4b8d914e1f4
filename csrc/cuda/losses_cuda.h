// The CUDA backend of the fused GAN loss: kernel in losses_cuda.cu, entry point bound in bindings.cpp.
#pragma once

#include "../common/gan_losses.h"

namespace fastddgan {

struct CudaLossKernels {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CUDA;
  static void run(const LossArgs& args);
};

}  // namespace fastddgan
