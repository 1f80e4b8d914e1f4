// The schemas of fastddgan's ops, declared once: torch.ops.fastddgan.<op> from Python, the dispatcher from C++
// (c10::Dispatcher::singleton().findSchemaOrThrow("fastddgan::<op>", "")), and in exported programs.
//
// The kernels register per dispatch key in their own files: TORCH_LIBRARY_IMPL(fastddgan, CPU, m) in csrc/cpu/
// (fastddgan._C, this file's extension) and TORCH_LIBRARY_IMPL(fastddgan, CUDA, m) in csrc/cuda/ (fastddgan._C_cuda).
// The fake (meta) kernels, the autograd formulas and the Python backends (the pure-PyTorch reference and Triton)
// register in fastddgan/ops/_library.py, the module named here. Adding an op: csrc/README.md.
//
//   affine_noise: out = table[0, t] a + table[1, t] b + table[2, t] noise (b optional; noise drawn from seed when
//                 not given: exactly one of noise and seed)
//   ddpm_step:    x0 = table[0, t] x_t - table[1, t] eps (clipped to [-1, 1] if clip_x0),
//                 out = table[2, t] x0 + table[3, t] x_t + table[4, t] noise
//   q_sample_pairs: x_prev = table[0, t] x0 + table[1, t] noise_prev, x_t = table[2, t] x_prev + table[3, t] noise_step
//                 (a true pair in one pass; the noises, or seed (2, 2): one [key, sample_offset] row per noise)
//   gan_loss:     (mean loss, d loss / d real, d loss / d fake) of a GAN objective (csrc/common/gan_losses.h)
//   philox_words: raw Philox4x32-10 words of counters (N, 4) under the key (k0, k1) (known-answer tests)
#include <Python.h>
#include <torch/library.h>

TORCH_LIBRARY(fastddgan, m) {
  // the module of the fake kernels and autograd formulas (torch.compile imports it for C++ callers); newer torch
  // calls this set_python_module, the older name is in every torch >= 2.4
  m.impl_abstract_pystub("fastddgan.ops._library");
  m.def("affine_noise(Tensor a, Tensor? b, Tensor t, Tensor table, Tensor? noise, Tensor? seed) -> Tensor");
  m.def("ddpm_step(Tensor eps, Tensor x_t, Tensor t, Tensor table, Tensor? noise, Tensor? seed, bool clip_x0) "
        "-> Tensor");
  m.def("q_sample_pairs(Tensor x0, Tensor t, Tensor table, Tensor? noise_prev, Tensor? noise_step, Tensor? seed) "
        "-> (Tensor, Tensor)");
  m.def("gan_loss(Tensor? real, Tensor fake, int kind, int part, float clamp) -> (Tensor, Tensor, Tensor)");
  m.def("philox_words(Tensor counters, Tensor key) -> Tensor");
}

// `import fastddgan._C` loads this library, whose static initialisers register the schemas above and the CPU
// kernels; the module itself is empty.
PyMODINIT_FUNC PyInit__C(void) {
  static PyModuleDef module = {PyModuleDef_HEAD_INIT, "fastddgan._C",
                               "fastddgan's op schemas and CPU kernels (torch.ops.fastddgan)", -1, nullptr};
  return PyModule_Create(&module);
}
