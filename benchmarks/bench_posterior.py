"""Benchmarks of the fused posterior draw and DDPM step, every backend against the eager reference.

    pytest benchmarks                                   # smoke test: each benchmarked call runs once
    pytest --benchmark-only benchmarks --benchmark-json=benchmarks/results/NAME.json
    python benchmarks/report.py benchmarks/results/NAME.json --out-md benchmarks/results/NAME.md

One ``benchmark.group`` per (op, shape, dtype, device) holds the eager ``torch`` reference and the fused backends of
that shape, so pytest-benchmark's table and ``report.py`` compare them directly. ``extra_info["bytes"]`` is the
minimum traffic of the op (two inputs read, one output written; the noise is drawn in-kernel by the fused backends),
from which ``report.py`` computes the achieved bandwidth.

All backends draw their own noise (``noise=None``): the eager reference pays for ``torch.randn``, the fused backends
for their in-kernel Philox stream. On CUDA the timed function synchronizes, so each sample is the full op latency.
"""

from __future__ import annotations

from typing import List, Tuple

import pytest
import torch

import fastddgan
from fastddgan import ops
from timing import measured, timed

POSTERIOR_SHAPES: List[Tuple[int, ...]] = [(64, 1, 32, 32), (256, 3, 32, 32), (64, 3, 64, 64)]
DDPM_SHAPES: List[Tuple[int, ...]] = [(64, 3, 64, 64)]
DTYPES = [torch.float32]
DDGAN_T = 4
DDPM_T = 1000
WARMUP_CALLS = 5  # untimed calls before measuring (first-call allocations, Triton compilation); only when timing

# Minimum bytes moved per element: read two inputs, write one output (all of the data dtype).
TENSORS_MOVED = 3

_DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64"}


def _devices() -> List[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _backends(device: str) -> List[str]:
    names = ops.available(device)
    if device == "cpu":  # triton runs on CPU tensors only under the (very slow) interpreter: not worth timing
        names = [name for name in names if name != "triton"]
    return names


def _cases(shapes):
    return [
        pytest.param(device, backend, shape, dtype,
                     id=f"{device}-{backend}-{'x'.join(map(str, shape))}-{_DTYPE_NAMES[dtype]}")
        for device in _devices()
        for shape in shapes
        for dtype in DTYPES
        for backend in _backends(device)
    ]


def _shape_str(shape) -> str:
    return "x".join(str(n) for n in shape)


def _setup(benchmark, op: str, device: str, backend: str, shape, dtype) -> None:
    numel = 1
    for n in shape:
        numel *= n
    element_size = torch.empty((), dtype=dtype).element_size()
    benchmark.group = f"{op} {_shape_str(shape)} {_DTYPE_NAMES[dtype]} {device}"
    benchmark.extra_info.update({
        "op": op,
        "backend": backend,
        "shape": list(shape),
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "dtype": str(dtype).replace("torch.", ""),
        "numel": numel,
        "bytes": TENSORS_MOVED * numel * element_size,
        "torch_num_threads": torch.get_num_threads(),
    })


def _run(benchmark, fn, device: str, backend: str):
    run = timed(fn, device)
    with ops.use_backend(backend):
        assert ops.select(torch.device(device)) == backend
        return measured(benchmark, run, WARMUP_CALLS)


def _check(out, like: torch.Tensor) -> None:
    assert isinstance(out, torch.Tensor)
    assert out.shape == like.shape, (out.shape, like.shape)
    assert out.dtype == like.dtype and out.device == like.device
    assert bool(torch.isfinite(out).all()), "non-finite values in the output"


def _inputs(shape, dtype, device, T: int):
    gen = torch.Generator().manual_seed(1234)
    a = torch.randn(shape, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(shape, generator=gen).to(device=device, dtype=dtype)
    t = torch.randint(0, T, (shape[0],), generator=gen).to(device)
    return a, b, t


@pytest.fixture(scope="module")
def ddgan_schedule():
    return fastddgan.Schedule.ddgan(DDGAN_T)


@pytest.fixture(scope="module")
def ddpm_schedule():
    return fastddgan.Schedule.linear(DDPM_T)


@pytest.mark.parametrize("device, backend, shape, dtype", _cases(POSTERIOR_SHAPES))
def test_posterior_sample(benchmark, ddgan_schedule, device, backend, shape, dtype):
    _setup(benchmark, "posterior_sample", device, backend, shape, dtype)
    x0, x_t, t = _inputs(shape, dtype, device, DDGAN_T)
    out = _run(benchmark, lambda: ops.posterior_sample(x0, x_t, t, ddgan_schedule), device, backend)
    _check(out, x0)


@pytest.mark.parametrize("device, backend, shape, dtype", _cases(DDPM_SHAPES))
def test_ddpm_step(benchmark, ddpm_schedule, device, backend, shape, dtype):
    _setup(benchmark, "ddpm_step", device, backend, shape, dtype)
    eps, x_t, t = _inputs(shape, dtype, device, DDPM_T)
    out = _run(benchmark, lambda: ops.ddpm_step(eps, x_t, t, ddpm_schedule, variance="small", clip_x0=True),
               device, backend)
    _check(out, x_t)
