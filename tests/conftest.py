"""Test setup.

* Triton kernels run on the CPU through the interpreter when there is no GPU. TRITON_INTERPRET must be set before
  fastddgan.kernels (and so triton.jit) is first imported; fastddgan imports its Triton kernels lazily, so setting
  it here is early enough.
* The thread policy (one per process) is in the repository's root conftest.py.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from fastddgan import ops  # noqa: E402


@pytest.fixture(autouse=True)
def _auto_backend():
    """Every test starts and ends with automatic backend choice."""
    ops.set_backend(None)
    yield
    ops.set_backend(None)
