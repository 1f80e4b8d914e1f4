// fastddgan._C: the C++ CPU backend.
#include "../common/bindings.h"
#include "losses_cpu.h"
#include "steps_cpu.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  fastddgan::bind_steps(m, &fastddgan::affine_noise_entry<fastddgan::CpuKernels>,
                       &fastddgan::ddpm_step_entry<fastddgan::CpuKernels>,
                       &fastddgan::philox_words_entry<fastddgan::CpuKernels>);
  fastddgan::bind_losses(m, &fastddgan::gan_loss_entry<fastddgan::CpuLossKernels>);
}
