"""Sampling: ``fastddgan.sample(model, T=4)`` for DDGAN and DDPM models, with CUDA-graph capture on GPU.

Every random number of a sampling run comes from Philox streams keyed by one 64-bit base key: stream ``j`` has the
key ``base + j * GOLDEN`` (j = 0: x_T; then, per step, the latent z and the step noise), and sample ``b`` of the
whole run reads its own counters (``sample_offset`` = the chunk's first sample). So

* the same ``seed`` gives the same images on any backend, in one batch or in chunks of any ``batch_size``;
* the keys are computed on the device from a one-element base-key tensor, so a captured CUDA graph replays with a
  new base key (copied in before the replay) and the graph and eager paths draw identical numbers.

The samplers themselves are small pure functions of (network, x, schedule, keys), in the spirit of k-diffusion.
"""

from __future__ import annotations

import numbers
import os
import weakref
from typing import Callable, Dict, Optional

import torch
from torch import nn

from . import ops
from .ddgan import DDGAN
from .ddpm import DDPM, ddim_step
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
def ddgan_sampler(predict_x0: Callable, x: torch.Tensor, schedule: Schedule, nz: int, seeds: torch.Tensor,
                  trajectory: Optional[list] = None) -> torch.Tensor:
    """DDGAN's reverse chain: for t = T-1..0, x0 = G(x_t, z, t) and x_{t-1} ~ q(x_{t-1} | x_t, x0) (fused).

    ``seeds`` rows: 1 + 2 t -> z at step t, 2 + 2 t -> the posterior noise at step t (row 0 drew x_T).
    """
    n = x.shape[0]
    for i in reversed(range(schedule.T)):
        t = torch.full((n,), i, dtype=torch.long, device=x.device)
        z = ops.normal((n, nz), seeds[1 + 2 * i], dtype=x.dtype)
        x0 = predict_x0(x, z, t).to(x.dtype)
        x = ops.posterior_sample(x0, x, t, schedule, seed=seeds[2 + 2 * i])
        if trajectory is not None:
            trajectory.append(x)
    return x


def ddpm_sampler(predict_eps: Callable, x: torch.Tensor, schedule: Schedule, seeds: torch.Tensor,
                 ddim: bool = False, clip_x0: bool = True, variance: str = "small",
                 trajectory: Optional[list] = None) -> torch.Tensor:
    """DDPM ancestral steps (fused ``ddpm_step``) or DDIM (eta = 0) over a (respaced) schedule.

    ``predict_eps(x, t)`` gets the respaced step index; ``seeds`` row 1 + t is the noise of step t.
    """
    n = x.shape[0]
    for i in reversed(range(schedule.T)):
        t = torch.full((n,), i, dtype=torch.long, device=x.device)
        eps = predict_eps(x, t).to(x.dtype)
        if ddim:
            x = ddim_step(eps, x, i, schedule, clip_x0)
        else:
            x = ops.ddpm_step(eps, x, t, schedule, variance=variance, clip_x0=clip_x0, seed=seeds[1 + i])
        if trajectory is not None:
            trajectory.append(x)
    return x


# ---------------------------------------------------------------------------------------------- one chunk
class _Chunk:
    """One sampling configuration (model, chunk size, T, dtype, guidance) as a function of
    (base_key, sample_offset, labels) -> images; optionally captured in a CUDA graph."""

    def __init__(self, model, T: int, n: int, device: torch.device, dtype, guidance: float, ddim: bool,
                 variance: str, conditional: bool, compile: bool):
        # a weak reference: the graph cache is keyed weakly by the model, and must not keep it alive
        self.model_ref = weakref.ref(model)
        self.n, self.device, self.dtype = n, device, dtype
        self.guidance, self.ddim, self.variance, self.conditional = guidance, ddim, variance, conditional
        net = model.ema.module
        if net.training:  # walking the modules costs ~0.3 ms per call for a small U-Net: only when needed
            net.eval()
        self.net = torch.compile(net, mode="max-autotune-no-cudagraphs") if compile else net
        if isinstance(model, DDGAN):
            self.schedule = model.schedule
            self.streams = 1 + 2 * model.T
        else:
            self.schedule = model.schedule.respace(T) if T != model.T else model.schedule
            self.streams = 1 + T
        self.timesteps = self.schedule.timesteps.to(device)
        self.graph = None

    def _autocast(self):
        enabled = self.dtype is not None and self.dtype != torch.float32
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=enabled)

    def run(self, base_key: torch.Tensor, offset: torch.Tensor, y: Optional[torch.Tensor],
            trajectory: Optional[list] = None) -> torch.Tensor:
        model, n = self.model_ref(), self.n
        seeds = stream_seeds(base_key, self.streams, offset)
        shape = (n, *model.sample_shape)
        x = ops.normal(shape, seeds[0])
        if trajectory is not None:
            trajectory.append(x)
        with self._autocast():
            if isinstance(model, DDGAN):
                predict = lambda x_t, z, t: model.predict_x0(self.net, x_t, z, t, y, self.guidance)  # noqa: E731
                return ddgan_sampler(predict, x, self.schedule, model.nz, seeds, trajectory)
            predict = lambda x_t, t: model.predict_eps(  # noqa: E731
                self.net, x_t, t, self.timesteps[t], self.schedule, y, self.guidance)
            return ddpm_sampler(predict, x, self.schedule, seeds, self.ddim, model.clip_x0, self.variance,
                                trajectory)

    # -------------------------------------------------------------------------------------- CUDA graph
    def capture(self) -> None:
        """Capture the whole loop once: static base key, sample offset and labels in, static images out."""
        self.static_key = torch.zeros(1, dtype=torch.int64, device=self.device)
        self.static_offset = torch.zeros(1, dtype=torch.int64, device=self.device)
        self.static_y = (torch.zeros(self.n, dtype=torch.long, device=self.device) if self.conditional else None)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):  # warm-up: kernels loaded, tables cached, allocator settled
            for _ in range(2):
                self.run(self.static_key, self.static_offset, self.static_y)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = self.run(self.static_key, self.static_offset, self.static_y)

    def replay(self, base_key: torch.Tensor, offset: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        self.static_key.copy_(base_key)
        self.static_offset.copy_(offset)
        if y is not None:
            self.static_y.copy_(y)
        self.graph.replay()
        return self.static_out.clone()  # the next replay overwrites the static output


# model -> {configuration: captured chunk}; weak keys, so a freed model's graphs (and memory pools) go with it
_GRAPH_CACHE: "weakref.WeakKeyDictionary[nn.Module, Dict[tuple, _Chunk]]" = weakref.WeakKeyDictionary()


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
           batch_size: Optional[int] = None):
    """``n`` images (or 2-D points) in the model's data range from a trained DDGAN or DDPM (EMA weights).

    Args:
        model: a ``fastddgan.DDGAN`` or ``fastddgan.DDPM``, or the path of a fastddgan checkpoint.
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
    """
    if isinstance(model, (str, os.PathLike)):
        from .checkpoint import load

        model = load(model, map_location=device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if not isinstance(model, (DDGAN, DDPM)):
        raise TypeError(f"model: expected a fastddgan.DDGAN, a fastddgan.DDPM or a checkpoint path, got "
                        f"{type(model).__name__}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n!r}")
    if isinstance(model, DDGAN):
        if T is not None and T != model.T:
            raise ValueError(f"T: this DDGAN was trained with T={model.T} and samples with it, got T={T}")
        if ddim:
            raise ValueError("ddim: DDIM steps are for DDPM models; a DDGAN's steps are its generator's")
    elif T is not None and (isinstance(T, bool) or not isinstance(T, int) or not 1 <= T <= model.T):
        raise ValueError(f"T: expected an integer in [1, {model.T}] (the DDPM's training T), got {T!r}")
    T = model.T if T is None else T
    if dtype not in _DTYPES and dtype not in _DTYPES.values():
        raise ValueError(f"dtype: expected one of {sorted(k for k in _DTYPES if k)} or a torch dtype, got {dtype!r}")
    dtype = _DTYPES.get(dtype, dtype)
    batch_size = n if batch_size is None else batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    net_device = next(model.ema.module.parameters()).device
    device = net_device if device is None else torch.device(device)
    if device != net_device:
        raise ValueError(f"device: the model is on {net_device}; move it (model.to(device)) or pass device=None")
    y = check_labels(class_labels, model.num_classes, n, device, name="class_labels")
    guidance = check_guidance(guidance, model.num_classes, y, labels_name="class_labels")
    generator = ops._validate.generator(generator, device)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"seed: expected an integer (or None), got {seed!r}")
        base_key = ops.seed_tensor(seed, 0, device)[:1]
    else:
        base_key = ops.draw_seed(device, generator)[:1]  # the key of a fresh [key, 0] seed
    if variance not in ("small", "large"):
        raise ValueError(f"variance: expected 'small' or 'large', got {variance!r}")
    graphed = _use_graph(cuda_graph, device, return_trajectory)
    outputs, trajectories = [], []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        offset = torch.full((1,), start, dtype=torch.int64, device=device)
        y_chunk = None if y is None else y[start:start + size]
        config = (size, T, dtype, guidance, ddim, variance, y is not None, compile)
        if graphed:
            graphs = _GRAPH_CACHE.setdefault(model, {})
            chunk = graphs.get((device,) + config)
            if chunk is None:
                chunk = _Chunk(model, T, size, device, dtype, guidance, ddim, variance, y is not None, compile)
                chunk.capture()
                graphs[(device,) + config] = chunk
            outputs.append(chunk.replay(base_key, offset, y_chunk))
        else:
            chunk = _Chunk(model, T, size, device, dtype, guidance, ddim, variance, y is not None, compile)
            trajectories.append([] if return_trajectory else None)
            outputs.append(chunk.run(base_key, offset, y_chunk, trajectories[-1]))
    images = torch.cat(outputs)
    if not return_trajectory:
        return images
    return images, [torch.cat(step) for step in zip(*trajectories)]


def clear_graph_cache() -> None:
    """Drop every captured sampling graph (and its memory pool)."""
    _GRAPH_CACHE.clear()


__all__ = ["sample", "ddgan_sampler", "ddpm_sampler", "stream_seeds", "clear_graph_cache"]

