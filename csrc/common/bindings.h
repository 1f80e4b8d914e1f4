// The Python face of one backend's kernels: fastddgan._C (CPU) and fastddgan._C_cuda (CUDA) expose the same two
// functions, which fastddgan/ops/_backends.py wraps. The ops themselves are declared once, in
// fastddgan/ops/_library.py (torch.library.custom_op), which routes to these functions.
#pragma once

#include <torch/extension.h>

namespace fastddgan {

using AffineNoiseFn = at::Tensor (*)(const at::Tensor&, const c10::optional<at::Tensor>&, const at::Tensor&,
                                     const at::Tensor&, const c10::optional<at::Tensor>&,
                                     const c10::optional<at::Tensor>&);
using DdpmStepFn = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                  const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&, bool);

inline void bind_steps(pybind11::module_& m, AffineNoiseFn affine_noise, DdpmStepFn ddpm_step) {
  namespace py = pybind11;
  m.def("affine_noise", affine_noise, "out = table[0,t] a + table[1,t] b + table[2,t] noise", py::arg("a"),
        py::arg("b"), py::arg("t"), py::arg("table"), py::arg("noise"), py::arg("seed"));
  m.def("ddpm_step", ddpm_step, "fused DDPM ancestral step", py::arg("eps"), py::arg("x_t"), py::arg("t"),
        py::arg("table"), py::arg("noise"), py::arg("seed"), py::arg("clip_x0"));
}

}  // namespace fastddgan
