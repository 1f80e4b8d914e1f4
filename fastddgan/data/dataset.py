"""What ``load_dataset`` returns: ``ImageData`` (uint8 images in memory), ``Toy2DData`` (fresh 2-D samples), and
``DataNotFoundError`` for a set whose files are missing."""

from __future__ import annotations

import hashlib
from typing import Optional, Sequence

import torch
from torch.utils.data import Dataset

from .toy2d import NAMES as TOY_NAMES
from .toy2d import TOY2D, Mixture2D, toy2d


class DataNotFoundError(FileNotFoundError):
    """A data set's files are not on disk (and could not be downloaded); the message says what to put where."""


def images_at(dataset, index) -> torch.Tensor:
    """The uint8 images (N, C, H, W) of an image set at ``index`` (a slice or a sequence / tensor of indices): its
    ``images`` tensor indexed when the set holds one in memory (a slice is a view), else its items stacked (a
    folder set too large to keep decoded)."""
    if dataset.images is not None:
        return dataset.images[index]
    positions = range(len(dataset))[index] if isinstance(index, slice) else index
    return torch.stack([dataset[int(i)][0] for i in positions])


class ImageData(Dataset):
    """An image data set held in memory: ``images`` uint8 (N, C, H, W), contiguous; ``labels`` int64 (N,).

    ``ds[i]`` is ``(images[i], int(labels[i]))``; the label is -1 for unlabelled sets (``num_classes`` None).
    ``classes`` names the labels (or is None). Whole batches can be indexed directly: ``ds.images[idx]``.
    """

    kind = "image"

    def __init__(self, name: str, images: torch.Tensor, labels: Optional[torch.Tensor] = None,
                 num_classes: Optional[int] = None, classes: Optional[Sequence[str]] = None):
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images: expected a uint8 tensor (N, C, H, W), got "
                             f"{getattr(images, 'dtype', type(images).__name__)} {tuple(getattr(images, 'shape', ()))}")
        if images.shape[-1] != images.shape[-2]:
            raise ValueError(f"images: expected square images, got {images.shape[-2]}x{images.shape[-1]}")
        n = images.shape[0]
        if labels is None:
            labels = torch.full((n,), -1, dtype=torch.int64)
        if not isinstance(labels, torch.Tensor) or labels.shape != (n,):
            raise ValueError(f"labels: expected a tensor of shape ({n},), got {tuple(getattr(labels, 'shape', ()))}")
        self.name = name
        self.images = images.contiguous()
        self.labels = labels.to(torch.int64).contiguous()
        self.channels, self.image_size = int(images.shape[1]), int(images.shape[-1])
        self.num_classes = num_classes
        self.classes = list(classes) if classes is not None else None

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        return self.images[index], int(self.labels[index])

    def fingerprint(self) -> str:
        """A short hash of what the set holds (name, number of images, channels, size and the pixels): statistics
        computed from the set are cached under it, so that other images never reuse them."""
        h = hashlib.sha1(f"{self.name}|{len(self)}|{self.channels}|{self.image_size}".encode())
        h.update(self.images.numpy().data)
        return h.hexdigest()[:12]

    def __repr__(self) -> str:
        classes = "unlabelled" if self.num_classes is None else f"{self.num_classes} classes"
        return (f"{type(self).__name__}({self.name!r}: {len(self)} images, {self.channels}x{self.image_size}x"
                f"{self.image_size}, {classes})")


class Toy2DData:
    """A 2-D toy data set (ring8, grid25, swissroll): ``sample(n)`` draws fresh (n, 2) float32 points each call.

    ``mixture`` is the ``TOY2D`` Gaussian mixture for exact quality metrics (None for swissroll).
    """

    kind = "toy"
    channels = 2
    image_size = None
    num_classes = None
    classes = None

    def __init__(self, name: str):
        if name not in TOY_NAMES:
            raise ValueError(f"name: expected one of {TOY_NAMES}, got {name!r}")
        self.name = name
        self.mixture: Optional[Mixture2D] = TOY2D.get(name)

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return toy2d(self.name, n, generator)

    def __repr__(self) -> str:
        return f"Toy2DData({self.name!r})"
