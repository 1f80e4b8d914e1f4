"""Triton kernels of fastddgan (installed as ``fastddgan.kernels``; imported only when the Triton backend is used)."""
