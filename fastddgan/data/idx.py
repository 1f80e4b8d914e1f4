"""fashion-mnist and mnist: the four IDX files under ``<data_dir>/FashionMNIST/raw`` or ``<data_dir>/MNIST/raw``
(raw or .gz), read here without torchvision (which only downloads them)."""

from __future__ import annotations

import gzip
import os
from typing import Optional

import numpy as np
import torch

from . import download as _dl
from .dataset import ImageData

SETS = {  # name: (folder under data_dir, where to get the files by hand, class names)
    "fashion-mnist": ("FashionMNIST", "https://github.com/zalandoresearch/fashion-mnist",
                      ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                       "Ankle boot"]),
    "mnist": ("MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/", [str(d) for d in range(10)]),
}
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def read_idx(path: str, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (magic 0x0000 08 ndim, big-endian uint32 sizes, then the data), raw or .gz."""
    try:
        with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot be read ({_dl.reason(err)}); delete or replace it") from None
    header = 4 + 4 * ndim
    if len(data) < header or data[:4] != bytes((0, 0, 8, ndim)):
        raise ValueError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimension{'s' if ndim > 1 else ''}; "
                         f"delete or replace it")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise ValueError(f"{path}: holds {len(data) - header} bytes of data but its header says {shape} "
                         f"({size} bytes); the file is truncated or damaged: delete or replace it")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _find(folder: str, base: str) -> Optional[str]:
    for path in (os.path.join(folder, base), os.path.join(folder, base + ".gz")):
        if os.path.isfile(path):
            return path
    return None


def load_idx_set(name: str, data_dir: str, train: bool, download: bool) -> ImageData:
    """fashion-mnist or mnist (train or test split) from data_dir, downloaded first when missing and allowed."""
    sub, url, classes = SETS[name]
    folder = os.path.join(data_dir, sub, "raw")
    wanted = FILES[:2] if train else FILES[2:]
    paths = [_find(folder, base) for base in wanted]
    if None in paths:
        why = _dl.fetch(name, data_dir, train) if download else None
        paths = [_find(folder, base) for base in wanted]
        if None in paths:
            place = (f"Place {', '.join(f + '.gz' for f in FILES)} there (from {url}; gunzipped files work too), "
                     f"{_dl.NO_DOWNLOAD_HINT}.")
            raise _dl.not_found(name, folder, download, why or "the download left no files", place)
    images, labels = read_idx(paths[0], 3), read_idx(paths[1], 1)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise ValueError(f"{name}: {paths[0]} holds images of shape {images.shape} and {paths[1]} {labels.shape[0]} "
                         f"labels; expected N images of 28x28 and N labels")
    if labels.size and labels.max() >= 10:
        raise ValueError(f"{name}: {paths[1]} holds label {int(labels.max())}; expected labels 0..9")
    return ImageData(name, torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long(),
                     num_classes=10, classes=classes)
