"""Multi-process data parallelism for ``torchrun --nproc_per_node=N -m fastddgan.train``.

Every process holds the whole model and trains on its own slice of each global batch (``--batch-size`` per
process; global batch = batch_size x N). Between each backward and its optimiser step the models call
``gradient_sync(optimizer)`` (:func:`gradient_sync`), which averages that optimiser's gradients over the processes:
the maths of DistributedDataParallel, done at the optimiser instead of inside backward, so the discriminator's R1 /
gradient-penalty double backward, the generator step that must not touch D's weights, and ``torch.compile`` all
work unchanged; it comes before the fp16 loss scaler's inf check, so every process skips or takes a step alike.
A parameter without a gradient on every process keeps none (Adam leaves it and its moments alone, as on one
process); the gradients go in buckets of about 25 MB, each all-reduce started before the first is waited for.
Parameters start equal (broadcast from process 0) and every process applies the same update, so they stay equal;
EMA weights too. NCCL on GPUs, gloo on CPU.

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

from .. import _checks


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
    device = _checks.cli_device(device)
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


class _Pending:
    """A collective on ``tensor``, started with :meth:`start`; :meth:`wait` returns once it is done and, on gloo,
    once no backend thread holds the tensor any more.

    While a C++ work object holds a tensor, PyTorch keeps the tensor's Python object alive with one extra
    reference, so ``sys.getrefcount`` shows when the backend has let go; short sleeps hand the GIL to the worker
    thread that must drop it. The count is taken in :meth:`start`, so between start and wait the other references
    to the tensor must not change (construct the object, then start it, as :func:`average_gradients` does: the
    constructor's argument is a reference of the caller's only during the call)."""

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor

    def start(self, collective, **kwargs) -> "_Pending":
        self.before = sys.getrefcount(self.tensor)
        self.work = collective(self.tensor, async_op=True, **kwargs)
        return self

    def wait(self, timeout: float = 30.0) -> torch.Tensor:
        self.work.wait()
        self.work = None
        if dist.get_backend() == "gloo":  # NCCL's watchdog thread releases works later; its shutdown joins it
            deadline = time.monotonic() + timeout
            while sys.getrefcount(self.tensor) > self.before and time.monotonic() < deadline:
                time.sleep(0.0002)
        return self.tensor


def _collective(collective, tensor: torch.Tensor, timeout: float = 30.0, **kwargs) -> None:
    """``collective(tensor, **kwargs)`` (a torch.distributed collective), returning once the backend is done with
    ``tensor`` (see :class:`_Pending`)."""
    _Pending(tensor).start(collective, **kwargs).wait(timeout)


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


BUCKET_BYTES = 25 * 2**20  # DistributedDataParallel's default bucket size


def average_gradients(params, world_size: int, bucket_bytes: int = BUCKET_BYTES) -> None:
    """Average the gradients of ``params`` (the same list, in the same order, on every process) over the processes.

    1. Which parameters have a gradient on some process: one small all-reduce (and a host read). A parameter with
       none anywhere keeps ``grad = None``, so Adam skips it and leaves its moments alone, as a single process
       would (zero-filling it would decay the moments and move the weights); one missing on some processes counts
       as zeros there, as in DistributedDataParallel.
    2. The gradients, flattened in buckets of at most ``bucket_bytes`` (one dtype and device each): every bucket's
       all-reduce (a sum) is started before the first is waited for, so flattening and communication overlap;
       then each bucket is divided by ``world_size`` and copied back.
    """
    params = list(params)
    if not params:
        return
    device = params[0].device
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    _collective(dist.all_reduce, present)
    used = [p for p, n in zip(params, present.tolist()) if n > 0]
    for p in used:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    buckets, size = [], 0
    for p in used:
        nbytes = p.grad.numel() * p.grad.element_size()
        head = buckets[-1][0].grad if buckets else None
        if head is None or size + nbytes > bucket_bytes or (head.dtype, head.device) != (p.grad.dtype, p.grad.device):
            buckets.append([])
            size = 0
        buckets[-1].append(p)
        size += nbytes
    pending = []
    for bucket in buckets:  # each flat buffer is held by its _Pending only (see there)
        work = _Pending(torch.cat([p.grad.reshape(-1) for p in bucket]))
        pending.append(work.start(dist.all_reduce))
    for bucket, work in zip(buckets, pending):
        flat = work.wait().div_(world_size)
        chunks = flat.split([p.grad.numel() for p in bucket])
        torch._foreach_copy_([p.grad for p in bucket], [c.view_as(p.grad) for c, p in zip(chunks, bucket)])


def gradient_sync(world_size: int, bucket_bytes: int = BUCKET_BYTES):
    """``sync(optimizer)``: :func:`average_gradients` of the optimiser's parameters; set it as a model's
    ``gradient_sync``, which calls it between backward and the optimiser step."""

    def sync(optimizer: torch.optim.Optimizer) -> None:
        average_gradients([p for group in optimizer.param_groups for p in group["params"]], world_size, bucket_bytes)

    return sync


def barrier(ctx: Context) -> None:
    if ctx.active:
        dist.barrier()


def shutdown(ctx: Context) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
