"""Deterministic, resumable training batches.

Every random choice of training step ``s`` on process ``rank`` comes from generators seeded with
``step_seed(seed, rank, s, stream)``, and the data order is a fixed function of (seed, epoch): epoch ``e`` is the
permutation ``randperm(N)`` seeded by (seed, e), cut into global batches of ``batch_size * world_size`` (the last
partial batch dropped); process ``rank`` takes its slice of each global batch. A run resumed at step ``s`` therefore
sees exactly the batches, noise and latents the uninterrupted run would have seen, with no iterator state to save.
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import torch

from ..data.convert import to_model_range

_MASK64 = (1 << 64) - 1
STREAM_DATA, STREAM_TRAIN, STREAM_INIT = 1, 2, 3


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def step_seed(seed: int, rank: int, step: int, stream: int) -> int:
    """A 63-bit seed for (run seed, process, step, stream), mixed so nearby inputs give unrelated streams."""
    h = 0
    for v in (seed, rank, step, stream):
        h = _splitmix64(h ^ (v & _MASK64))
    return h >> 1


class BatchPlan:
    """Which examples process ``rank`` trains on at each step (see the module docstring)."""

    def __init__(self, size: int, batch_size: int, world_size: int = 1, rank: int = 0, seed: int = 0):
        self.size, self.batch_size, self.world_size, self.rank, self.seed = size, batch_size, world_size, rank, seed
        self.global_batch = batch_size * world_size
        if self.global_batch > size:
            raise ValueError(f"batch_size: the global batch ({batch_size} x {world_size} processes = "
                             f"{self.global_batch}) is larger than the data set ({size} examples)")
        self.batches_per_epoch = size // self.global_batch
        self._epoch, self._perm = None, None

    def epoch(self, step: int) -> float:
        return step / self.batches_per_epoch

    def indices(self, step: int) -> torch.Tensor:
        e, j = divmod(step, self.batches_per_epoch)
        if e != self._epoch:
            g = torch.Generator().manual_seed(step_seed(self.seed, 0, e, STREAM_DATA))
            self._epoch, self._perm = e, torch.randperm(self.size, generator=g)
        start = j * self.global_batch + self.rank * self.batch_size
        return self._perm[start:start + self.batch_size]


def _flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    mask = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(-1), x)


class Batches:
    """``batches.get(step) -> (x0, y)`` on ``device``: images in [-1, 1] (or 2-D points), labels or None."""

    def __init__(self, dataset, batch_size: int, device: torch.device, seed: int, rank: int = 0,
                 world_size: int = 1, labels: bool = False, hflip: bool = False, num_workers: int = 0,
                 start_step: int = 0, total_steps: Optional[int] = None):
        self.dataset, self.batch_size, self.device = dataset, batch_size, torch.device(device)
        self.seed, self.rank, self.labels, self.hflip = seed, rank, labels, hflip
        self.toy = getattr(dataset, "kind", "image") == "toy"
        self.plan = None if self.toy else BatchPlan(len(dataset), batch_size, world_size, rank, seed)
        self._images = self._labels = None
        self._loader: Optional[Iterator] = None
        self.num_workers, self.total_steps = num_workers, total_steps
        if not self.toy and getattr(dataset, "images", None) is not None:
            self._images = dataset.images.to(self.device)  # uint8: 47 MB for MNIST, 150 MB for CIFAR-10
            self._labels = dataset.labels.to(self.device)
        elif not self.toy:
            self.restart(start_step)

    def restart(self, step: int) -> None:
        """Continue from ``step`` (after reloading a checkpoint); only streaming (folder) data needs it."""
        if self._images is None and not self.toy:
            from torch.utils.data import DataLoader

            sampler = _StepSampler(self.plan, step, self.total_steps)
            self._loader = iter(DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.num_workers,
                                           pin_memory=self.device.type == "cuda"))
            self._next_step = step

    def epoch(self, step: int) -> Optional[float]:
        return None if self.plan is None else self.plan.epoch(step)

    def get(self, step: int) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        g = torch.Generator().manual_seed(step_seed(self.seed, self.rank, step, STREAM_DATA))
        if self.toy:
            return self.dataset.sample(self.batch_size, generator=g).to(self.device), None
        if self._loader is not None:
            if step != self._next_step:
                raise RuntimeError(f"step: the data loader streams steps in order; expected {self._next_step}, "
                                   f"got {step}")
            self._next_step += 1
            images, labels = next(self._loader)
            x = to_model_range(images.to(self.device, non_blocking=True))
            y = labels.to(self.device, non_blocking=True)
        else:
            idx = self.plan.indices(step).to(self.device, non_blocking=True)
            x, y = to_model_range(self._images[idx].to(self.device, non_blocking=True)), self._labels[idx]
        if self.hflip:
            x = _flip(x, g)
        return x, (y if self.labels else None)


class _StepSampler(torch.utils.data.Sampler):
    """Batch sampler for a DataLoader: the index lists of steps start, start + 1, ... (forever if no total)."""

    def __init__(self, plan: BatchPlan, start: int, total: Optional[int]):
        self.plan, self.start, self.total = plan, start, total

    def __iter__(self) -> Iterator[List[int]]:
        step = self.start
        while self.total is None or step < self.total:
            yield self.plan.indices(step).tolist()
            step += 1

    def __len__(self) -> int:
        return (self.total - self.start) if self.total is not None else 2**62
