"""The cost of a standard normal on CPU (issue 15: <= 0.5 ns per normal per core), against torch and the copy limit.

    pytest benchmarks/bench_noise.py                                     # smoke test: each call runs once
    pytest --benchmark-only benchmarks/bench_noise.py --benchmark-json=benchmarks/results/NAME.json

One ``benchmark.group`` per size holds, measured in one run (ns per normal = median / ``extra_info["normals"]``):

* ``fastddgan``: ``ops.normal(shape, seed)``, the in-kernel Philox4x32-10 + Box-Muller stream of the fused ops
  written to a new tensor (the fused ops draw the same noise; this is the generator without the rest of an op);
* ``fastddgan-posterior``: ``ops.posterior_sample`` with the noise drawn in-kernel (reads two tensors, writes one);
* ``fastddgan-posterior-noise=``: the same op with the noise given (no generator: the op's memory traffic);
* ``torch.randn``: torch's CPU normal generator (mt19937 + vectorised Box-Muller) into a preallocated tensor;
* ``copy``: ``dst.copy_(src)`` of the same bytes, the memory limit of writing the noise.

``extra_info["bytes"]`` is the bytes written (a float32 per normal), from which ``report.py`` computes bandwidth.
The thread count is torch's (report it with the numbers).
"""

from __future__ import annotations

import pytest
import torch

import fastddgan
from fastddgan import ops
from timing import measured

SHAPES = [(64, 3, 32, 32), (256, 3, 32, 32)]
CALLS = ("fastddgan", "fastddgan-posterior", "fastddgan-posterior-noise=", "torch.randn", "copy")
WARMUP_CALLS = 5


def _call(name: str, shape):
    gen = torch.Generator().manual_seed(0)
    if name == "fastddgan":
        seed = ops.seed_tensor(1)
        return lambda: ops.normal(shape, seed)
    if name.startswith("fastddgan-posterior"):
        schedule = fastddgan.Schedule.ddgan(4)
        x0, x_t = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
        t = torch.full((shape[0],), 2)
        if name.endswith("noise="):
            noise = torch.randn(shape, generator=gen)
            return lambda: ops.posterior_sample(x0, x_t, t, schedule, noise=noise)
        return lambda: ops.posterior_sample(x0, x_t, t, schedule, generator=gen)
    out = torch.empty(shape)
    if name == "torch.randn":
        return lambda: torch.randn(shape, generator=gen, out=out)
    src = torch.randn(shape, generator=gen)
    return lambda: out.copy_(src)


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: "x".join(map(str, shape)))
def test_noise(benchmark, name, shape):
    numel = 1
    for n in shape:
        numel *= n
    benchmark.group = f"noise {'x'.join(map(str, shape))} fp32 cpu"
    benchmark.extra_info.update({"op": "noise", "backend": name, "shape": list(shape), "device": "cpu",
                                 "normals": numel, "bytes": 4 * numel, "torch_num_threads": torch.get_num_threads(),
                                 "reference": "torch.randn"})
    fn = _call(name, shape)
    with ops.use_backend("cpp"):
        out = measured(benchmark, fn, WARMUP_CALLS)
    assert out.shape == shape and bool(torch.isfinite(out).all())
