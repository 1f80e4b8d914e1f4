// The CPU backend of the fused GAN loss: kernel in losses_cpu.cpp, entry point bound in bindings.cpp.
#pragma once

#include "../common/gan_losses.h"

namespace fastddgan {

struct CpuLossKernels {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CPU;
  static void run(const LossArgs& args);
};

}  // namespace fastddgan
