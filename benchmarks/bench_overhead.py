"""The fixed cost of one op call, at a tiny shape where the arithmetic is free (issue 15: <= 10 µs per call).

    pytest benchmarks/bench_overhead.py                                  # smoke test: each call runs once
    pytest --benchmark-only benchmarks/bench_overhead.py --benchmark-json=benchmarks/results/NAME.json
    python benchmarks/report.py benchmarks/results/NAME.json --baseline public

One ``benchmark.group`` per op holds, measured in one run:

* ``public``: the user-facing function (``fastddgan.ops.posterior_sample`` / ``ddpm_step``): argument checks,
  table lookup, seed draw, then the op;
* ``public-grad``: the same with an input that requires grad (the path through the dispatcher's autograd kernel);
* ``raw``: the registered op ``torch.ops.fastddgan.<op>`` called with a ready table and seed (the dispatcher's
  Python kernels for autograd and the backend choice, then the C++ kernel);
* ``torch.add``: an elementwise torch op of the same tensors, the floor of any op call from Python.

CPU only (the GPU's launch latency is another question); the thread count is torch's (report it with the numbers).
"""

from __future__ import annotations

import pytest
import torch

import fastddgan
from fastddgan import ops
from fastddgan.ops import _library
from timing import measured

SHAPE = (1, 1, 4, 4)
WARMUP_CALLS = 100


def _inputs():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(SHAPE, generator=gen), torch.randn(SHAPE, generator=gen)
    return a, b, torch.tensor([2])


def _calls(op: str):
    a, b, t = _inputs()
    a_grad = a.clone().requires_grad_()
    seed = ops.seed_tensor(1)
    if op == "posterior_sample":
        schedule = fastddgan.Schedule.ddgan(4)
        public, raw = ops.posterior_sample, _library.affine_noise
        table, tail = schedule.kernel_table("posterior", torch.float32, a.device), ()
    else:
        schedule = fastddgan.Schedule.linear(1000)
        public, raw = ops.ddpm_step, _library.ddpm_step
        table, tail = schedule.kernel_table("ddpm_small", torch.float32, a.device), (True,)
    return {
        "public": lambda: public(a, b, t, schedule),
        "public-grad": lambda: public(a_grad, b, t, schedule),
        "raw": lambda: raw(a, b, t, table, None, seed, *tail),
        "torch.add": lambda: torch.add(a, b),
    }


CASES = [pytest.param(op, call, id=f"{op}-{call}") for op in ("posterior_sample", "ddpm_step")
         for call in ("public", "public-grad", "raw", "torch.add")]


@pytest.mark.parametrize("op, call", CASES)
def test_overhead(benchmark, op, call):
    benchmark.group = f"overhead {op} {'x'.join(map(str, SHAPE))} fp32 cpu"
    benchmark.extra_info.update({"op": op, "backend": call, "shape": list(SHAPE), "device": "cpu",
                                 "torch_num_threads": torch.get_num_threads(), "reference": "torch.add"})
    fn = _calls(op)[call]
    with ops.use_backend("cpp"):
        out = measured(benchmark, fn, WARMUP_CALLS)
    assert out.shape == SHAPE and bool(torch.isfinite(out).all())
