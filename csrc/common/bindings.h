// The Python face of one backend's kernels: fastddgan._C (CPU) and fastddgan._C_cuda (CUDA) expose the same
// functions (affine_noise, ddpm_step, gan_loss; philox_words for the known-answer tests), which
// fastddgan/ops/_backends.py wraps. The ops themselves are declared once, in fastddgan/ops/_library.py
// (torch.library.custom_op), which routes to these functions.
#pragma once

#include <torch/extension.h>

#include <tuple>

namespace fastddgan {

using AffineNoiseFn = at::Tensor (*)(const at::Tensor&, const c10::optional<at::Tensor>&, const at::Tensor&,
                                     const at::Tensor&, const c10::optional<at::Tensor>&,
                                     const c10::optional<at::Tensor>&);
using DdpmStepFn = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                  const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&, bool);

using PhiloxWordsFn = at::Tensor (*)(const at::Tensor&, const at::Tensor&);

inline void bind_steps(pybind11::module_& m, AffineNoiseFn affine_noise, DdpmStepFn ddpm_step,
                       PhiloxWordsFn philox_words) {
  namespace py = pybind11;
  m.def("affine_noise", affine_noise, "out = table[0,t] a + table[1,t] b + table[2,t] noise", py::arg("a"),
        py::arg("b"), py::arg("t"), py::arg("table"), py::arg("noise"), py::arg("seed"));
  m.def("ddpm_step", ddpm_step, "fused DDPM ancestral step", py::arg("eps"), py::arg("x_t"), py::arg("t"),
        py::arg("table"), py::arg("noise"), py::arg("seed"), py::arg("clip_x0"));
  m.def("philox_words", philox_words, "raw Philox4x32-10 words of counters (N, 4) under key (k0, k1)",
        py::arg("counters"), py::arg("key"));
}

using GanLossFn = std::tuple<at::Tensor, at::Tensor, at::Tensor> (*)(const c10::optional<at::Tensor>&,
                                                                     const at::Tensor&, int64_t, int64_t, double);

inline void bind_losses(pybind11::module_& m, GanLossFn gan_loss) {
  namespace py = pybind11;
  m.def("gan_loss", gan_loss, "fused GAN loss: (mean loss, d loss / d real logits, d loss / d fake logits)",
        py::arg("real"), py::arg("fake"), py::arg("kind"), py::arg("part"), py::arg("clamp"));
}

}  // namespace fastddgan
