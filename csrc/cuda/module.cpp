// `import fastddgan._C_cuda` loads this library, whose static initialisers register the CUDA kernels of the ops
// (TORCH_LIBRARY_IMPL(fastddgan, CUDA, m) in the .cu files; the schemas are in csrc/ops.cpp); the module is empty.
#include <Python.h>

PyMODINIT_FUNC PyInit__C_cuda(void) {
  static PyModuleDef module = {PyModuleDef_HEAD_INIT, "fastddgan._C_cuda",
                               "fastddgan's CUDA kernels (torch.ops.fastddgan)", -1, nullptr};
  return PyModule_Create(&module);
}
