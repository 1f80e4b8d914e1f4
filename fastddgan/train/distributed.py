"""Multi-process data parallelism for ``torchrun --nproc_per_node=N -m fastddgan.train``.

Every process holds the whole model and trains on its own slice of each global batch (``--batch-size`` per
process; global batch = batch_size x N). Before each optimiser step the gradients of that optimiser's parameters
are averaged over the processes with one all-reduce of a flat buffer: the maths of DistributedDataParallel, done at
the optimiser instead of inside backward, so the discriminator's R1 / gradient-penalty double backward, the
generator step that must not touch D's weights, and ``torch.compile`` all work unchanged. Parameters start equal
(broadcast from process 0) and every process applies the same update, so they stay equal; EMA weights too.
NCCL on GPUs, gloo on CPU.

Every collective here returns only once the backend's threads have let go of its tensor (:func:`_collective`).
A gloo worker thread drops its last reference to a tensor after the collective has completed, and that drop
takes the GIL; when the main thread had meanwhile reached interpreter shutdown, the worker died inside a
destructor and the process aborted ("terminate called without an active exception", SIGABRT at exit).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Context:
    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init(device: Optional[str]) -> Context:
    """The process's rank and device; starts the process group when launched by torchrun (WORLD_SIZE > 1)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device: cuda was asked for but torch sees no CUDA device")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(0, 1, torch.device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Context(rank, world, dev)


def _collective(collective, tensor: torch.Tensor, timeout: float = 30.0, **kwargs) -> None:
    """``collective(tensor, **kwargs)`` (a torch.distributed collective), then, on gloo, wait until no backend thread
    holds ``tensor`` any more.

    While a C++ work object holds a tensor, PyTorch keeps the tensor's Python object alive with one extra
    reference, so ``sys.getrefcount`` shows when the backend has let go; short sleeps hand the GIL to the worker
    thread that must drop it.
    """
    before = sys.getrefcount(tensor)
    work = collective(tensor, async_op=True, **kwargs)
    work.wait()
    del work
    if dist.get_backend() != "gloo":  # NCCL's watchdog thread releases works later; its shutdown joins it
        return
    deadline = time.monotonic() + timeout
    while sys.getrefcount(tensor) > before and time.monotonic() < deadline:
        time.sleep(0.0002)


def broadcast_module(module: nn.Module) -> None:
    """Copy process 0's parameters and buffers to every process."""
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            data = tensor.data
            _collective(dist.broadcast, data, src=0)


def replicas_equal(module: nn.Module) -> bool:
    """Whether every process holds bit-identical parameters and buffers (elementwise max == min over processes)."""
    with torch.no_grad():
        flat = torch.cat([t.detach().reshape(-1).double() for t in list(module.parameters()) +
                          list(module.buffers()) if t.is_floating_point()])
        high, low = flat.clone(), flat
        _collective(dist.all_reduce, high, op=dist.ReduceOp.MAX)
        _collective(dist.all_reduce, low, op=dist.ReduceOp.MIN)
        return bool(torch.equal(high, low))


def average_gradients(optimizer: torch.optim.Optimizer, world_size: int) -> None:
    """Register an optimiser pre-step hook that averages its parameters' gradients over the processes."""

    def hook(opt, args, kwargs):
        params = [p for group in opt.param_groups for p in group["params"]]
        for p in params:
            if p.grad is None:  # a parameter unused on this process still takes part in the all-reduce
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        _collective(dist.all_reduce, flat)
        flat.div_(world_size)
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n

    optimizer.register_step_pre_hook(hook)


def barrier(ctx: Context) -> None:
    if ctx.active:
        dist.barrier()


def shutdown(ctx: Context) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
