"""Sampling: ``fastddgan.sample(model, T=4)`` for DDGAN and DDPM models, with CUDA-graph capture on GPU.

Every random number of a sampling run comes from Philox streams keyed by one 64-bit base key: stream ``j`` has the
key ``base + j * GOLDEN`` (j = 0: x_T; then, per step, the latent z and the step noise), and sample ``b`` of the
whole run reads its own counters (``sample_offset`` = the chunk's first sample). So

* the same ``seed`` gives the same images on any backend, in one batch or in chunks of any ``batch_size``;
* the keys are computed on the device from a one-element base-key tensor, so a captured CUDA graph replays with a
  new base key (copied in before the replay) and the graph and eager paths draw identical numbers.

The samplers themselves are small pure functions of (denoiser, x, schedule, seeds) with one signature, in the spirit
of k-diffusion; what a model family samples with comes from its protocol (:mod:`fastddgan.family`): its sampler,
schedule, denoiser and sampling (EMA) network. A chunk of samples is a :class:`SamplingPlan` (what is computed),
run eagerly (:func:`run_plan`) or captured in a CUDA graph (:class:`CapturedPlan`).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import warnings
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import nn

from . import _checks, ops
from .checkpoint import load
from .family import SamplingSetup, is_model
from .guidance import check_guidance, check_labels
from .schedule import Schedule

_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64: spreads the stream keys
_DTYPES = {None: None, "fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
           "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


def stream_seeds(base_key: torch.Tensor, count: int, sample_offset: torch.Tensor) -> torch.Tensor:
    """(count, 2) int64 seed tensors [key_j, sample_offset] with key_j = base + j * GOLDEN (wrapping), on device."""
    j = torch.arange(count, dtype=torch.int64, device=base_key.device)
    keys = base_key + j * _GOLDEN
    return torch.stack([keys, sample_offset.expand(count)], dim=1)


# ---------------------------------------------------------------------------------------------- samplers
# Every sampler has one signature, ``sampler(denoiser, x, schedule, seeds, *, extra_args=None, trajectory=None,
# **options) -> x``, in the spirit of k-diffusion's: ``denoiser`` is any callable (the family's convention: DDGAN
# ``denoiser(x_t, t, z, **extra_args) -> x0``, DDPM ``denoiser(x_t, t, **extra_args) -> eps``, ``t`` the step index
# into ``schedule``), ``x`` the starting noise x_T, ``seeds`` the (streams, 2) Philox seeds of :func:`stream_seeds`
# (row 0 drew x_T; the sampler reads ``streams_per_step`` rows per step), ``extra_args`` the conditioning passed to
# every denoiser call (``y=``), ``trajectory`` a list that collects x after each step.
def ddgan_sampler(denoiser: Callable, x: torch.Tensor, schedule: Schedule, seeds: torch.Tensor, *, nz: int,
                  extra_args: Optional[dict] = None, trajectory: Optional[list] = None,
                  steps: Optional[int] = None, truncation: float = 1.0) -> torch.Tensor:
    """DDGAN's reverse chain: for t = T-1..0, x0 = G(x_t, z, t) and x_{t-1} ~ q(x_{t-1} | x_t, x0) (fused).

    ``seeds`` rows: 1 + 2 t -> z (of size ``nz``) at step t, 2 + 2 t -> the posterior noise at step t.
    ``steps`` = k < T runs only the last k steps, t = k-1..0, from an ``x`` at that point of the chain.
    ``truncation`` psi: z ~ N(0, psi^2 I) instead of N(0, I) (the truncation trick of GANs, here a scaled latent;
    psi = 0: G's latent fixed at 0); the posterior noise is untouched.
    """
    extra_args = extra_args or {}
    n = x.shape[0]
    steps = schedule.T if steps is None else _checks.integer("steps", steps, 1, schedule.T)
    for i in reversed(range(steps)):
        t = torch.full((n,), i, dtype=torch.long, device=x.device)
        z = ops.normal((n, nz), seeds[1 + 2 * i], dtype=x.dtype)
        if truncation != 1.0:
            z = z * truncation
        x0 = denoiser(x, t, z, **extra_args).to(x.dtype)
        x = ops.posterior_sample(x0, x, t, schedule, seed=seeds[2 + 2 * i])
        if trajectory is not None:
            trajectory.append(x)
    return x


ddgan_sampler.streams_per_step = 2


def ddpm_sampler(denoiser: Callable, x: torch.Tensor, schedule: Schedule, seeds: torch.Tensor, *,
                 clip_x0: bool = True, variance: str = "small", extra_args: Optional[dict] = None,
                 trajectory: Optional[list] = None) -> torch.Tensor:
    """DDPM ancestral steps (fused ``ddpm_step``) over a (respaced) schedule; ``seeds`` row 1 + t is the noise of
    step t."""
    extra_args = extra_args or {}
    n = x.shape[0]
    for i in reversed(range(schedule.T)):
        t = torch.full((n,), i, dtype=torch.long, device=x.device)
        eps = denoiser(x, t, **extra_args).to(x.dtype)
        x = ops.ddpm_step(eps, x, t, schedule, variance=variance, clip_x0=clip_x0, seed=seeds[1 + i])
        if trajectory is not None:
            trajectory.append(x)
    return x


ddpm_sampler.streams_per_step = 1


def ddim_sampler(denoiser: Callable, x: torch.Tensor, schedule: Schedule, seeds: torch.Tensor, *,
                 clip_x0: bool = True, extra_args: Optional[dict] = None,
                 trajectory: Optional[list] = None) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) steps over a (respaced) schedule: no noise after x_T."""
    extra_args = extra_args or {}
    n = x.shape[0]
    for i in reversed(range(schedule.T)):
        t = torch.full((n,), i, dtype=torch.long, device=x.device)
        eps = denoiser(x, t, **extra_args).to(x.dtype)
        x = ddim_step(eps, x, i, schedule, clip_x0)
        if trajectory is not None:
            trajectory.append(x)
    return x


ddim_sampler.streams_per_step = 1  # unused rows: the stream layout is the ancestral sampler's


def ddim_step(eps: torch.Tensor, x_t: torch.Tensor, i: int, schedule: Schedule, clip_x0: bool = True):
    """Deterministic DDIM (eta = 0): x0 from eps (clipped), then x_{t-1} = sqrt(ab_prev) x0 + sqrt(1-ab_prev) eps'."""
    ab, ab_prev = float(schedule.alphas_cumprod[i]), float(schedule.alphas_cumprod_prev[i])
    x0 = (x_t - (1 - ab) ** 0.5 * eps) / ab**0.5
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        eps = (x_t - ab**0.5 * x0) / (1 - ab) ** 0.5
    return ab_prev**0.5 * x0 + (1 - ab_prev) ** 0.5 * eps


# ---------------------------------------------------------------------------------------------- one chunk
@dataclass(frozen=True)
class SamplingPlan:
    """What one chunk computes: the sampler, its schedule, options and prepared denoiser, the number of Philox
    streams, the chunk's shape, device and autocast dtype. No execution state: :func:`run_plan` runs it eagerly,
    :class:`CapturedPlan` in a CUDA graph."""

    sampler: Callable
    schedule: Schedule
    options: Dict
    denoiser: Callable
    streams: int
    shape: Tuple[int, ...]
    device: torch.device
    dtype: Optional[torch.dtype]
    conditional: bool


def make_plan(setup: SamplingSetup, net: nn.Module, sample_shape, n: int, device: torch.device, dtype,
              guidance: float, conditional: bool, compile: bool) -> SamplingPlan:
    """The plan of a chunk of ``n`` samples of a model whose :class:`~fastddgan.family.SamplingSetup` is ``setup``
    and whose sampling network is ``net``."""
    if net.training:  # walking the modules costs ~0.3 ms per call for a small U-Net: only when needed
        net.eval()
    net = torch.compile(net, mode="max-autotune-no-cudagraphs") if compile else net
    return SamplingPlan(setup.sampler, setup.schedule, dict(setup.options), setup.denoiser(net, device, guidance),
                        setup.streams, (n, *sample_shape), device, dtype, conditional)


def _autocast(plan: SamplingPlan):
    enabled = plan.dtype is not None and plan.dtype != torch.float32
    return torch.autocast(plan.device.type, dtype=plan.dtype, enabled=enabled)


def run_plan(plan: SamplingPlan, base_key: torch.Tensor, offset: torch.Tensor, y: Optional[torch.Tensor],
             trajectory: Optional[list] = None) -> torch.Tensor:
    """Run ``plan`` eagerly for the base key, the chunk's first sample index ``offset`` and its labels ``y``."""
    seeds = stream_seeds(base_key, plan.streams, offset)
    x = ops.normal(plan.shape, seeds[0])
    if trajectory is not None:
        trajectory.append(x)
    with _autocast(plan):
        return plan.sampler(plan.denoiser, x, plan.schedule, seeds, extra_args={"y": y}, trajectory=trajectory,
                            **plan.options)


class CapturedPlan:
    """A plan captured once in a CUDA graph: static base key, sample offset and labels in, static images out.

    ``nbytes`` is the device memory it holds: its static buffers and the graph's private memory pool (what the
    device's reserved memory grew by during the capture), the measure of the graph cache's byte limit."""

    def __init__(self, plan: SamplingPlan):
        self.plan = plan
        device, n = plan.device, plan.shape[0]
        self.static_key = torch.zeros(1, dtype=torch.int64, device=device)
        self.static_offset = torch.zeros(1, dtype=torch.int64, device=device)
        self.static_y = torch.zeros(n, dtype=torch.long, device=device) if plan.conditional else None
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):  # warm-up: kernels loaded, tables cached, allocator settled
            for _ in range(2):
                run_plan(plan, self.static_key, self.static_offset, self.static_y)
        torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        reserved = torch.cuda.memory_reserved(device)
        with torch.cuda.graph(self.graph):
            self.static_out = run_plan(plan, self.static_key, self.static_offset, self.static_y)
        statics = (self.static_key, self.static_offset, self.static_y, self.static_out)
        self.nbytes = max(torch.cuda.memory_reserved(device) - reserved, 0) + sum(
            x.numel() * x.element_size() for x in statics if x is not None)

    def replay(self, base_key: torch.Tensor, offset: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        self.static_key.copy_(base_key)
        self.static_offset.copy_(offset)
        if y is not None:
            self.static_y.copy_(y)
        self.graph.replay()
        return self.static_out.clone()  # the next replay overwrites the static output


class GraphCache:
    """The captured sampling graphs, per (model, configuration), least recently used evicted first.

    Bounded by ``max_bytes`` (the sum of the plans' ``nbytes``: static buffers and graph memory pools) and
    ``max_entries``; None leaves a bound off. A new plan always stays, even alone above the byte bound (the call that
    captured it replays it next). Models are held weakly: a freed model's graphs (and memory pools) go with it.
    Evicting a plan releases its graph; its pool's memory returns to torch's caching allocator.
    """

    def __init__(self, max_bytes: Optional[int] = None, max_entries: Optional[int] = None):
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self._plans: "OrderedDict[Tuple[int, tuple], object]" = OrderedDict()  # (id(model), key) -> plan, LRU first
        self._models: Dict[int, weakref.ref] = {}  # id(model) -> a weak reference whose callback drops its plans
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._plans)

    def get(self, model, key: tuple):
        """The plan cached for ``model`` and ``key`` (now the most recently used), or None."""
        ref = self._models.get(id(model))
        if ref is None or ref() is not model:
            return None
        plan = self._plans.get((id(model), key))
        if plan is not None:
            self._plans.move_to_end((id(model), key))
        return plan

    def put(self, model, key: tuple, plan) -> None:
        """Cache ``plan`` for ``model`` and ``key`` as the most recently used, then evict the least recently used
        plans while a bound is exceeded."""
        model_id = id(model)
        if model_id not in self._models:
            self._models[model_id] = weakref.ref(model, lambda _, model_id=model_id: self._drop_model(model_id))
        self._remove((model_id, key))
        self._plans[(model_id, key)] = plan
        self.nbytes += plan.nbytes
        while len(self._plans) > 1 and self._over():
            self._remove(next(iter(self._plans)))

    def set_limits(self, max_bytes: Optional[int] = None, max_entries: Optional[int] = None) -> None:
        """New bounds (None: unbounded), applied now."""
        if max_bytes is not None:
            _checks.integer("max_bytes", max_bytes, 0, expected="an integer >= 0 or None", integral=True)
        if max_entries is not None:
            _checks.integer("max_entries", max_entries, 1, expected="an integer >= 1 or None", integral=True)
        self.max_bytes, self.max_entries = max_bytes, max_entries
        while self._plans and self._over():
            self._remove(next(iter(self._plans)))

    def clear(self) -> None:
        self._plans.clear()
        self.nbytes = 0

    def _over(self) -> bool:
        return ((self.max_bytes is not None and self.nbytes > self.max_bytes)
                or (self.max_entries is not None and len(self._plans) > self.max_entries))

    def _remove(self, entry) -> None:
        plan = self._plans.pop(entry, None)
        if plan is not None:
            self.nbytes -= plan.nbytes

    def _drop_model(self, model_id: int) -> None:
        self._models.pop(model_id, None)
        for entry in [entry for entry in self._plans if entry[0] == model_id]:
            self._remove(entry)


_GRAPH_CACHE_BYTES = 4 * 2**30


def _default_graph_cache_bytes() -> Optional[int]:
    """FASTDDGAN_GRAPH_CACHE_MB (MiB >= 0, or "none": unbounded), else 4 GiB; a bad value is warned about (not an
    import error) and the default used."""
    value = os.environ.get("FASTDDGAN_GRAPH_CACHE_MB", "").strip().lower()
    if not value:
        return _GRAPH_CACHE_BYTES
    if value == "none":
        return None
    try:
        mib = float(value)
    except ValueError:
        mib = -1.0
    if not 0 <= mib < float("inf"):
        warnings.warn(f"FASTDDGAN_GRAPH_CACHE_MB: expected a number of MiB >= 0 or 'none', got {value!r}; using "
                      f"{_GRAPH_CACHE_BYTES // 2**20}", RuntimeWarning, stacklevel=2)
        return _GRAPH_CACHE_BYTES
    return int(mib * 2**20)


# every captured sampling graph of the process (see GraphCache; set_graph_cache_limits changes the bounds)
_GRAPH_CACHE = GraphCache(_default_graph_cache_bytes(), max_entries=32)


def set_graph_cache_limits(max_bytes: Optional[int] = _GRAPH_CACHE_BYTES, max_entries: Optional[int] = 32) -> None:
    """Bound the memory of the captured sampling graphs: at most ``max_bytes`` (static buffers and graph memory
    pools; default 4 GiB, or ``FASTDDGAN_GRAPH_CACHE_MB`` at import) and ``max_entries`` graphs (default 32), least
    recently used evicted first; None removes a bound. Applied at once."""
    _GRAPH_CACHE.set_limits(max_bytes, max_entries)


def _use_graph(cuda_graph, device: torch.device, trajectory: bool) -> bool:
    if cuda_graph not in ("auto", True, False):
        raise ValueError(f"cuda_graph: expected 'auto', True or False, got {cuda_graph!r}")
    if cuda_graph is True and device.type != "cuda":
        raise ValueError(f"cuda_graph: CUDA graphs need a CUDA device, got {device}")
    if cuda_graph is True and trajectory:
        raise ValueError("cuda_graph: return_trajectory=True needs the eager loop (cuda_graph='auto' or False)")
    return device.type == "cuda" and cuda_graph is not False and not trajectory


# ---------------------------------------------------------------------------------------------- public API
@torch.inference_mode()
def sample(model, T: Optional[int] = None, n: int = 64, *, seed: Optional[int] = None,
           generator: Optional[torch.Generator] = None, device=None, dtype=None,
           class_labels: Optional[torch.Tensor] = None, guidance: float = 0.0, ddim: bool = False,
           variance: str = "small", cuda_graph="auto", compile: bool = False, return_trajectory: bool = False,
           batch_size: Optional[int] = None, truncation: float = 1.0, start_index: int = 0):
    """``n`` images (or 2-D points) in the model's data range from a trained DDGAN or DDPM (EMA weights).

    Args:
        model: a ``fastddgan.DDGAN`` or ``fastddgan.DDPM`` (any model of the :class:`fastddgan.family.Model`
            protocol), or the path of a fastddgan checkpoint or export.
        T: steps; a DDGAN samples with its training T, a DDPM with any T <= its training T (respaced).
        seed: makes the result reproducible (same seed -> same images, chunked or not, graph or eager);
            otherwise a base key is drawn from ``generator`` (default: the device's default generator).
        dtype: None/"fp32", "bf16" or "fp16" autocast of the network calls.
        class_labels: (n,) labels of a class-conditional model; ``guidance`` w: classifier-free guidance.
        ddim, variance: deterministic DDIM steps, or the ancestral steps' variance "small" / "large" (DDPM only).
        cuda_graph: "auto" (capture the loop on CUDA devices), True or False.
        compile: ``torch.compile`` the network (mode without CUDA graphs of its own).
        return_trajectory: also return the list of intermediate samples, x_T first (eager loop).
        batch_size: the chunk size (default: n).
        truncation: psi, a DDGAN's latent z ~ N(0, psi^2 I) (default 1: the trained distribution; smaller trades
            variety for fidelity, the GAN truncation trick; DDGAN only).
        start_index: the index of the first image in the seed's stream: with a seed, ``n=k, start_index=i`` draws
            images i..i+k-1 of a larger draw (the same noise), to continue a draw in parts; ``class_labels`` are
            this call's k labels.
    """
    if isinstance(model, (str, os.PathLike)):
        model = load(model, map_location=_checks.default_device(device))
    if not is_model(model):
        raise TypeError(f"model: expected a fastddgan.DDGAN, a fastddgan.DDPM or a checkpoint path, got "
                        f"{type(model).__name__}")
    _checks.integer("n", n, 1)
    setup = model.sampling_setup(T, ddim=ddim, variance=variance)  # checks T (and ddim) for the model
    T = setup.schedule.T
    truncation = _checks.finite_number("truncation", truncation)
    if truncation != 1.0:
        if "truncation" not in inspect.signature(setup.sampler).parameters:
            raise ValueError(f"truncation: scales a DDGAN generator's latent; this {type(model).__name__} has "
                             f"none (expected 1.0, got {truncation})")
        setup = dataclasses.replace(setup, options={**setup.options, "truncation": truncation})
    if dtype not in _DTYPES and dtype not in _DTYPES.values():
        raise ValueError(f"dtype: expected one of {sorted(k for k in _DTYPES if k)} or a torch dtype, got {dtype!r}")
    dtype = _DTYPES.get(dtype, dtype)
    batch_size = n if batch_size is None else batch_size
    _checks.integer("batch_size", batch_size, 1)
    _checks.integer("start_index", start_index, 0)
    net = model.sampling_network()
    net_device = next(net.parameters()).device
    device = net_device if device is None else _checks.device(device)
    if device != net_device:
        raise ValueError(f"device: the model is on {net_device}; move it (model.to(device)) or pass device=None")
    y = check_labels(class_labels, model.num_classes, n, device, name="class_labels")
    guidance = check_guidance(guidance, model.num_classes, y, labels_name="class_labels")
    generator = _checks.generator(generator, device)
    if seed is not None:
        _checks.integer("seed", seed, expected="an integer (or None)", integral=True)
        base_key = ops.seed_tensor(seed, 0, device)[:1]
    else:
        base_key = ops.draw_seed(device, generator)[:1]  # the key of a fresh [key, 0] seed
    if variance not in ("small", "large"):
        raise ValueError(f"variance: expected 'small' or 'large', got {variance!r}")
    graphed = _use_graph(cuda_graph, device, return_trajectory)
    outputs, trajectories = [], []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        offset = torch.full((1,), start_index + start, dtype=torch.int64, device=device)
        y_chunk = None if y is None else y[start:start + size]
        config = (size, T, dtype, guidance, ddim, variance, y is not None, compile, truncation)
        if graphed:
            captured = _GRAPH_CACHE.get(model, (device,) + config)
            if captured is None:
                plan = make_plan(setup, net, model.sample_shape, size, device, dtype, guidance, y is not None, compile)
                captured = CapturedPlan(plan)
                _GRAPH_CACHE.put(model, (device,) + config, captured)
            outputs.append(captured.replay(base_key, offset, y_chunk))
        else:
            plan = make_plan(setup, net, model.sample_shape, size, device, dtype, guidance, y is not None, compile)
            trajectories.append([] if return_trajectory else None)
            outputs.append(run_plan(plan, base_key, offset, y_chunk, trajectories[-1]))
    images = torch.cat(outputs)
    if not return_trajectory:
        return images
    return images, [torch.cat(step) for step in zip(*trajectories)]


def clear_graph_cache() -> None:
    """Drop every captured sampling graph (and its memory pool)."""
    _GRAPH_CACHE.clear()


__all__ = ["sample", "ddgan_sampler", "ddpm_sampler", "ddim_sampler", "ddim_step", "stream_seeds", "SamplingPlan",
           "make_plan", "run_plan", "CapturedPlan", "GraphCache", "clear_graph_cache", "set_graph_cache_limits"]

