"""Every contender of the posterior draw and the DDPM step side by side, in one run (issue 15), fp32 CPU.

    pytest benchmarks/bench_contenders.py                                # smoke test: each call runs once
    OMP_NUM_THREADS=1 pytest --benchmark-only benchmarks/bench_contenders.py --benchmark-json=NAME.json
    python benchmarks/report.py NAME.json --out-md NAME.md

One ``benchmark.group`` per (op, shape) holds the contenders of benchmarks/contenders.py: fastddgan's op (noise
in-kernel, and with ``noise=`` given), the DDGAN reference's formulation in eager torch (the group's reference row),
that formulation under ``torch.compile`` (noise inside; eager ``randn`` + a compiled kernel taking the noise; that
kernel alone with the noise given), diffusers' ``DDPMScheduler.step`` (DDPM step; skipped without diffusers,
``pip install .[bench]``), and the limits: a copy of the op's bytes and the op's normals from fastddgan's generator
alone.

``extra_info``: ``op``, ``shape``, ``contender``, ``bytes`` (the op's minimum traffic: two inputs read, one output
written; for the copy, the bytes it moves, the same number), ``limit`` on the limit rows (``copy`` gives report.py
the fraction of copy bandwidth), ``normals`` on the noise row (ns per normal). The posterior draws t per sample
(t == 0 included); the DDPM step uses one t for the batch, as diffusers' ``step`` takes one int.

In the plain run (benchmarks disabled) the compiled contenders run at the smallest shape only: each shape costs a
compilation (seconds) and the other shapes add nothing to a smoke test.
"""

from __future__ import annotations

import pytest
import torch

from fastddgan import ops

import contenders as cs
from timing import measured

SHAPES = [(64, 1, 28, 28), (64, 3, 32, 32), (256, 3, 32, 32), (64, 3, 64, 64)]
WARMUP_CALLS = 5


def _shape_str(shape) -> str:
    return "x".join(str(n) for n in shape)


@pytest.mark.parametrize("op, shape, contender", [
    pytest.param(op, shape, contender, id=f"{op}-{_shape_str(shape)}-{contender}")
    for op, shape, contender in cs.cases(SHAPES)])
def test_contender(benchmark, op, shape, contender):
    if contender in cs.COMPILED and not benchmark.enabled and shape != SHAPES[0]:
        pytest.skip("compiled contenders are smoke-tested at the smallest shape only (a compilation per shape)")
    fn = cs.make_call(op, contender, shape)
    if fn is None:
        pytest.skip(f"{contender} is not installed (pip install .[bench])")
    numel = cs.numel_of(shape)
    benchmark.group = f"{op} {_shape_str(shape)} fp32 cpu"
    info = {"op": op, "shape": list(shape), "contender": contender, "device": "cpu", "dtype": "float32",
            "numel": numel, "bytes": cs.TENSORS_MOVED * numel * 4, "torch_num_threads": torch.get_num_threads(),
            "reference": cs.REFERENCE, "rank": cs.CONTENDERS[op].index(contender)}
    if contender == "copy (limit)":
        info["limit"] = "copy"
    if contender == "noise (limit)":
        info.update({"limit": "noise", "normals": numel, "bytes": 4 * numel})
    benchmark.extra_info.update(info)
    with ops.use_backend("cpp"):
        out = measured(benchmark, fn, WARMUP_CALLS)
    assert bool(torch.isfinite(out).all())
    assert out.numel() == (cs.TENSORS_MOVED * numel // 2 if contender == "copy (limit)" else numel)


@pytest.mark.parametrize("op", cs.OPS)
def test_contenders_compute_the_op(op):
    """The formulations timed above compute the op: with the same noise, the reference formula, its compiled kernel
    and diffusers (its noise is torch.randn from the generator it is given) agree with fastddgan's op."""
    shape = (8, 3, 8, 8)
    a, b, t = cs.inputs(op, shape)
    schedule = cs.schedule_of(op)
    coefs = cs.reference_coefs(op, schedule)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(7))
    fused = ops.posterior_sample if op == "posterior_sample" else ops.ddpm_step
    expected = fused(a, b, t, schedule, noise=noise)
    formula = cs.posterior_formula if op == "posterior_sample" else cs.ddpm_formula
    torch.testing.assert_close(formula(a, b, t, coefs, noise), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cs.compiled(op, cs.COMPILED[1])(a, b, t, coefs, noise), expected, rtol=1e-5, atol=1e-5)
    scheduler = cs.diffusers_scheduler() if op == "ddpm_step" else None
    if scheduler is not None:
        out = scheduler.step(a, int(t[0]), b, generator=torch.Generator().manual_seed(7), return_dict=False)[0]
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
