"""Which backends the tests run on: every fused backend usable on this machine (GPU ones only with a GPU)."""

import pytest
import torch

from fastddgan import ops

FUSED = ("cpp", "cuda", "triton")


def fused_backends(device_type: str):
    return [name for name in ops.available(device_type) if name in FUSED]


def backend_params():
    """(backend, device) pairs for every fused backend usable here; GPU ones only with a GPU."""
    params = [pytest.param(name, "cpu", id=f"{name}-cpu") for name in fused_backends("cpu")]
    if torch.cuda.is_available():
        params += [pytest.param(name, "cuda", id=f"{name}-cuda") for name in fused_backends("cuda")]
    return params
