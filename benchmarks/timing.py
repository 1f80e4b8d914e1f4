"""Helpers shared by the benchmark files."""

import torch


def timed(fn, device: str):
    """``fn`` as timed: on CUDA it synchronizes, so each sample is the whole latency of the call."""
    if device == "cuda":
        def run():
            out = fn()
            torch.cuda.synchronize()
            return out
        return run
    return fn


def measured(benchmark, run, warmup: int):
    """``benchmark(run)`` after ``warmup`` untimed calls (first-call allocations, compilation, CUDA-graph capture);
    the warm-up only when timing, so a plain test run calls ``run`` once, as a smoke test."""
    if benchmark.enabled:
        for _ in range(warmup):
            run()
    return benchmark(run)
