// fastddgan._C_cuda: the CUDA C++ backend (built when a CUDA toolkit is found; see setup.py).
#include "../common/bindings.h"
#include "losses_cuda.h"
#include "steps_cuda.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  fastddgan::bind_steps(m, &fastddgan::affine_noise_entry<fastddgan::CudaKernels>,
                       &fastddgan::ddpm_step_entry<fastddgan::CudaKernels>,
                       &fastddgan::philox_words_entry<fastddgan::CudaKernels>);
  fastddgan::bind_losses(m, &fastddgan::gan_loss_entry<fastddgan::CudaLossKernels>);
}
