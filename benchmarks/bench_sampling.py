"""Benchmarks of whole sampling runs: DDGAN few-step sampling (fused engine vs an eager reference loop) and DDPM vs
DDGAN on the same-size U-Net.

    pytest benchmarks/bench_sampling.py                 # smoke test: each benchmarked call runs once (long DDPM
                                                        # chains, T=1000 and T=300, are skipped)
    pytest --benchmark-only benchmarks/bench_sampling.py --benchmark-json=benchmarks/results/NAME.json
    python benchmarks/report.py benchmarks/results/NAME.json --out-md benchmarks/results/NAME.md

Two kinds of groups, both read by ``report.py`` (``extra_info["images"]`` per call gives images/s,
``extra_info["reference"]`` names the row the group's speed-ups are relative to):

* ``ddgan-sample T=.. n=.. <device>``: one DDGAN (``tiny`` preset, 28x28x1, untrained weights: speed only) sampled
  by the ``eager-reference`` loop below (plain PyTorch ops, written like the public DDGAN reference
  implementation's ``sample_from_model``), by ``fused`` = ``fastddgan.sample(cuda_graph=False)`` and, on CUDA, by
  ``fused+graph`` (the loop captured in a CUDA graph during the untimed warm-up) and ``fused+graph+compile``.
* ``ddpm-vs-ddgan tiny n=16 <device>``: ``fastddgan.sample`` of a DDPM (``tiny`` denoiser U-Net,
  ``Schedule.linear(1000)``) at T = 1000, 300, 50 respaced steps, and of a DDGAN T=4 whose generator is the
  ``tiny`` generator U-Net; the speed-ups are relative to DDPM T=1000. ``extra_info["nfe"]`` is the number of
  network evaluations per sample (T; twice that with classifier-free guidance, not used here).

* ``cpu-options <kind> mnist-cpu T=.. n=.. cpu``: the CPU preset's DDGAN (T = 4, n = 64) and DDPM (50 respaced
  steps, n = 16) sampled by ``fastddgan.sample`` as it is (``fp32``, the reference row) and with each execution
  option a CPU user can pick: ``compile`` (``compile=True``, inductor; ``extra_info["first_call_s"]`` holds the
  compilation), ``bf16`` (``dtype="bf16"`` autocast of the network; ``extra_info["max_abs_diff"]`` against fp32
  from the same seed) and ``channels-last`` (the network's weights in channels-last memory format). The
  ``compile`` rows are skipped in smoke mode (a compilation each).

On CUDA the timed function synchronizes, so each sample is the full latency of a sampling call.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional

import pytest
import torch

import fastddgan
from fastddgan import ops
from fastddgan.models import build
from fastddgan.sampling import stream_seeds
from timing import measured, timed

PRESET = "tiny"
SAMPLE_SHAPE = (1, 28, 28)
DDGAN_TS = (1, 2, 4, 8)
CPU_NS = (1, 16, 64)
CUDA_NS = (1, 16, 64, 256)
SEED = 1234
WARMUP_CALLS = 1  # untimed calls before measuring (allocator, CUDA-graph capture, torch.compile); only when timing

DDPM_TRAIN_T = 1000
DDPM_TS = (1000, 300, 50)
VS_N = 16
VS_DDGAN_T = 4
VS_REFERENCE = f"ddpm-T{DDPM_TRAIN_T}"
LONG_T = 300  # DDPM chains of >= LONG_T steps: skipped in smoke mode; a few pedantic rounds on CPU when timing
LONG_ROUNDS_CPU = {1000: 2, 300: 3}
EAGER = "eager-reference"

CPU_PRESET = "mnist-cpu"
CPU_OPTIONS = ("fp32", "compile", "bf16", "channels-last")
CPU_OPTION_RUNS = {"ddgan": (4, 64), "ddpm": (50, 16)}  # kind -> (T, n)


def _devices() -> List[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _paths(device: str) -> List[str]:
    return [EAGER, "fused"] + (["fused+graph", "fused+graph+compile"] if device == "cuda" else [])


def _ddgan_cases():
    return [
        pytest.param(device, T, n, path, id=f"{device}-T{T}-n{n}-{path}")
        for device in _devices()
        for T in DDGAN_TS
        for n in (CUDA_NS if device == "cuda" else CPU_NS)
        for path in _paths(device)
    ]


def _vs_cases():
    return [pytest.param(device, kind, T, id=f"{device}-{kind}-T{T}")
            for device in _devices()
            for kind, T in [("ddpm", T) for T in DDPM_TS] + [("ddgan", VS_DDGAN_T)]]


# ---------------------------------------------------------------------------------------------- models
_MODELS: Dict[tuple, torch.nn.Module] = {}


def _cpu_preset_model(kind: str):
    key = (kind, CPU_PRESET)
    if key not in _MODELS:
        from fastddgan.checkpoint import from_preset

        torch.manual_seed(0)
        _MODELS[key] = from_preset(kind, CPU_PRESET, 4 if kind == "ddgan" else DDPM_TRAIN_T)
    return _MODELS[key]


def _ddgan(T: int, device: str) -> fastddgan.DDGAN:
    key = ("ddgan", T, device)
    if key not in _MODELS:
        torch.manual_seed(0)
        _MODELS[key] = fastddgan.DDGAN(build(PRESET, "generator"), build(PRESET, "discriminator"), schedule=T,
                                       sample_shape=SAMPLE_SHAPE).to(device)
    return _MODELS[key]


def _ddpm(device: str) -> fastddgan.DDPM:
    key = ("ddpm", DDPM_TRAIN_T, device)
    if key not in _MODELS:
        torch.manual_seed(0)
        _MODELS[key] = fastddgan.DDPM(build(PRESET, "denoiser"), fastddgan.Schedule.linear(DDPM_TRAIN_T),
                                      sample_shape=SAMPLE_SHAPE).to(device)
    return _MODELS[key]


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------- eager reference
class EagerTables:
    """The schedule's float32 posterior tables on the CPU, as the reference code keeps its coefficients."""

    def __init__(self, schedule: fastddgan.Schedule):
        self.T = schedule.T
        self.coef1 = schedule.posterior_mean_coef1.float().cpu()
        self.coef2 = schedule.posterior_mean_coef2.float().cpu()
        self.log_var = schedule.posterior_log_variance_clipped.float().cpu()


def _extract(table: torch.Tensor, t: torch.Tensor, device, ndim: int) -> torch.Tensor:
    return table.gather(0, t).to(device).reshape(-1, *([1] * (ndim - 1)))


def eager_reference_sample(generator: torch.nn.Module, tables: EagerTables, n: int, nz: int, device,
                           draw: Optional[Callable[[tuple, int], torch.Tensor]] = None) -> torch.Tensor:
    """DDGAN's reverse chain in plain PyTorch ops (the reference implementation's ``sample_from_model`` and
    ``sample_posterior``): per step a torch.randn latent, x0 = G(x_t, z, t), the posterior mean and std gathered
    from CPU tables and moved to the device, torch.randn_like noise and the t > 0 mask.

    ``draw(shape, stream)`` replaces torch.randn (stream 0: x_T; 1 + 2 t: z; 2 + 2 t: the step noise), so that a
    test can feed it the fused engine's Philox streams; the timed path leaves it None.
    """
    with torch.inference_mode():
        shape = (n, *SAMPLE_SHAPE)
        x = torch.randn(shape, device=device) if draw is None else draw(shape, 0)
        for i in reversed(range(tables.T)):
            t = torch.full((n,), i, dtype=torch.int64)
            z = torch.randn(n, nz, device=device) if draw is None else draw((n, nz), 1 + 2 * i)
            x0 = generator(x, z, t.to(device))
            mean = _extract(tables.coef1, t, device, x.dim()) * x0 + _extract(tables.coef2, t, device, x.dim()) * x
            std = torch.exp(0.5 * _extract(tables.log_var, t, device, x.dim()))
            noise = torch.randn_like(x) if draw is None else draw(shape, 2 + 2 * i)
            nonzero_mask = (1 - (t == 0).float()).to(device).reshape(-1, *([1] * (x.dim() - 1)))
            x = mean + nonzero_mask * std * noise
    return x


def _philox_draw(T: int, seed: int, device) -> Callable[[tuple, int], torch.Tensor]:
    """The noise ``fastddgan.sample(seed=seed)`` draws, stream by stream (see fastddgan.sampling)."""
    base_key = ops.seed_tensor(seed, 0, device)[:1]
    seeds = stream_seeds(base_key, 1 + 2 * T, torch.zeros(1, dtype=torch.int64, device=device))
    return lambda shape, stream: ops.normal(shape, seeds[stream])


# ---------------------------------------------------------------------------------------------- helpers


def _info(benchmark, device: str, **extra) -> None:
    benchmark.extra_info.update({
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "kernel_backend": ops.select(torch.device(device)),
        "preset": PRESET,
        "sample_shape": list(SAMPLE_SHAPE),
        "dtype": "float32",
        "torch_num_threads": torch.get_num_threads(),
        **extra,
    })


def _check(out, n: int, device: str, bound: Optional[float] = None) -> None:
    assert isinstance(out, torch.Tensor)
    assert out.shape == (n, *SAMPLE_SHAPE), out.shape
    assert out.dtype == torch.float32 and out.device.type == device
    assert bool(torch.isfinite(out).all()), "non-finite values in the samples"
    if n > 1:
        assert float(out.std()) > 1e-3, "degenerate samples (all equal)"
    if bound is not None:
        assert float(out.abs().max()) <= bound, float(out.abs().max())


# ---------------------------------------------------------------------------------------------- 1. DDGAN paths
@pytest.mark.parametrize("device, T, n, path", _ddgan_cases())
def test_ddgan_sample(benchmark, device, T, n, path):
    model = _ddgan(T, device)
    benchmark.group = f"ddgan-sample T={T} n={n} {device}"
    _info(benchmark, device, op="ddgan_sample", backend=path, path=path, reference=EAGER, T=T, n=n, images=n,
          nfe=T, params=_params(model.ema.module))
    if path == EAGER:
        generator, tables = model.ema.module.eval(), EagerTables(model.schedule)
        fn = lambda: eager_reference_sample(generator, tables, n, model.nz, device)  # noqa: E731
    else:
        graph, compiled = "graph" in path, "compile" in path
        fn = lambda: fastddgan.sample(model, n=n, seed=SEED, cuda_graph=graph, compile=compiled)  # noqa: E731
    out = measured(benchmark, timed(fn, device), WARMUP_CALLS)  # CUDA-graph capture and compilation: untimed
    _check(out, n, device)


def test_eager_reference_matches_fused():
    """The eager reference loop is the same chain as fastddgan.sample: fed the engine's Philox noise, it gives the
    engine's images (so the timings compare like with like)."""
    for T in (1, 4):
        model = _ddgan(T, "cpu")
        draw = _philox_draw(T, SEED, "cpu")
        ref = eager_reference_sample(model.ema.module.eval(), EagerTables(model.schedule), 8, model.nz, "cpu", draw)
        fused = fastddgan.sample(model, n=8, seed=SEED, cuda_graph=False)
        torch.testing.assert_close(fused, ref, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------- 2. DDPM vs DDGAN
@pytest.mark.parametrize("device, kind, T", _vs_cases())
def test_ddpm_vs_ddgan(benchmark, device, kind, T):
    long_chain = kind == "ddpm" and T >= LONG_T
    if long_chain and not benchmark.enabled:
        pytest.skip(f"DDPM T={T}: long chain, timed only with --benchmark-only")
    model = _ddpm(device) if kind == "ddpm" else _ddgan(T, device)
    name = f"{kind}-T{T}"
    benchmark.group = f"ddpm-vs-ddgan {PRESET} n={VS_N} {device}"
    _info(benchmark, device, op="sample", backend=name, path=name, reference=VS_REFERENCE, model=kind, T=T, n=VS_N,
          images=VS_N, nfe=T, params=_params(model.ema.module))
    run = timed(lambda: fastddgan.sample(model, T=T, n=VS_N, seed=SEED), device)
    # DDPM samples go through the clipped x0 at the last step (no noise at t = 0), so they lie in [-1, 1].
    bound = 1.0 + 1e-5 if kind == "ddpm" else None
    if long_chain and device == "cpu" and benchmark.enabled:  # seconds per call: a few rounds, no warm-up
        out = benchmark.pedantic(run, rounds=LONG_ROUNDS_CPU[T], iterations=1, warmup_rounds=0)
    else:
        out = measured(benchmark, run, WARMUP_CALLS)
    _check(out, VS_N, device, bound)


# ---------------------------------------------------------------------------------------------- 3. CPU options
@pytest.mark.parametrize("kind, option", [pytest.param(kind, option, id=f"{kind}-{option}")
                                          for kind in CPU_OPTION_RUNS for option in CPU_OPTIONS])
def test_cpu_sampling_options(benchmark, kind, option):
    if option == "compile" and not benchmark.enabled:
        pytest.skip("compile: timed only with --benchmark-only (a compilation per case)")
    model = _cpu_preset_model(kind)
    T, n = CPU_OPTION_RUNS[kind]
    net = model.sampling_network()
    kwargs = {"compile": True} if option == "compile" else {"dtype": "bf16"} if option == "bf16" else {}
    run = lambda: fastddgan.sample(model, T=T, n=n, seed=SEED, cuda_graph=False, **kwargs)  # noqa: E731
    benchmark.group = f"cpu-options {kind} {CPU_PRESET} T={T} n={n} cpu"
    extra = {}
    try:
        if option == "channels-last":
            net.to(memory_format=torch.channels_last)
        start = time.perf_counter()
        first = run()
        extra["first_call_s"] = round(time.perf_counter() - start, 3)
        if option != "fp32":
            extra["max_abs_diff"] = float((first - fastddgan.sample(model, T=T, n=n, seed=SEED, cuda_graph=False))
                                          .abs().max())
        _info(benchmark, "cpu", op="sample", backend=option, path=option, reference="fp32", model=kind, T=T, n=n,
              images=n, nfe=T, params=_params(net), preset=CPU_PRESET,
              dtype="bfloat16 autocast" if option == "bf16" else "float32", **extra)
        out = benchmark(run) if benchmark.enabled else first
    finally:
        net.to(memory_format=torch.contiguous_format)
    _check(out, n, "cpu")
