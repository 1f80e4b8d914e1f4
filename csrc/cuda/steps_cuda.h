// CUDA entry points of the fused ops; see steps_cuda.cu and fastddgan/ops/_library.py for the op contract.
#pragma once

#include <ATen/ATen.h>

namespace fastddgan {

at::Tensor affine_noise_cuda(const at::Tensor& a, const c10::optional<at::Tensor>& b, const at::Tensor& t,
                             const at::Tensor& table, const c10::optional<at::Tensor>& noise,
                             const c10::optional<at::Tensor>& seed);

at::Tensor ddpm_step_cuda(const at::Tensor& eps, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& table,
                          const c10::optional<at::Tensor>& noise, const c10::optional<at::Tensor>& seed,
                          bool clip_x0);

}  // namespace fastddgan
