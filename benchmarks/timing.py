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
