"""cifar10: the python-pickle batches in ``<data_dir>/cifar-10-batches-py``, or read in place from
``<data_dir>/cifar-10-python.tar.gz``; unpickled with an allow-list, so no code runs from a foreign file."""

from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np
import torch

from . import download as _dl
from .dataset import ImageData

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FOLDER, ARCHIVE = "cifar-10-batches-py", "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR batch holds (dicts, lists, numpy arrays): no code runs from a foreign file."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "scalar"), ("numpy._core.numeric", "_frombuffer"),
                ("_codecs", "encode")}  # protocol-2 pickles written by Python 3 store bytes through it

    def find_class(self, module, name):
        module = "numpy._core" + module[len("numpy.core"):] if module.startswith("numpy.core") else module
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def read_batch(f, where: str):
    """(data uint8 (N, 3072), labels int64 (N,)) of one pickled CIFAR-10 batch read from the file object ``f``."""
    try:
        entry = _BatchUnpickler(f, encoding="latin1").load()
    except Exception as err:
        raise ValueError(f"{where}: not a CIFAR-10 python batch ({_dl.reason(err)}); delete or replace it") from None
    entry = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in dict(entry).items()} \
        if isinstance(entry, dict) else {}
    data, labels = entry.get("data"), entry.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 \
            or labels is None or len(labels) != data.shape[0]:
        raise ValueError(f"{where}: expected a dict with 'data' uint8 (N, 3072) and N 'labels'; delete or replace it")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= 10):
        raise ValueError(f"{where}: holds labels outside 0..9")
    return data, labels


def load_cifar10(data_dir: str, train: bool, download: bool) -> ImageData:
    """cifar10 (train or test split) from data_dir, downloaded first when missing and allowed."""
    folder, tar_path = os.path.join(data_dir, FOLDER), os.path.join(data_dir, ARCHIVE)
    names = TRAIN_BATCHES if train else TEST_BATCHES
    have = lambda: all(os.path.isfile(os.path.join(folder, n)) for n in names)  # noqa: E731
    batches = []
    if not have() and os.path.isfile(tar_path):
        try:
            with tarfile.open(tar_path, "r:gz") as tar:
                for n in names:
                    member = tar.extractfile(f"{FOLDER}/{n}")
                    batches.append(read_batch(io.BytesIO(member.read()), f"{tar_path}:{FOLDER}/{n}"))
        except (tarfile.TarError, KeyError, OSError, EOFError, AttributeError) as err:
            raise ValueError(f"cifar10: {tar_path} is not a complete CIFAR-10 python archive ({_dl.reason(err)}); "
                             f"delete or replace it") from None
    else:
        if not have():
            why = _dl.fetch("cifar10", data_dir, train) if download else None
            if not have():
                place = (f"Place {', '.join(TRAIN_BATCHES + TEST_BATCHES)} there (the CIFAR-10 python version, from "
                         f"{URL}), or put {ARCHIVE} in {data_dir}, {_dl.NO_DOWNLOAD_HINT}.")
                raise _dl.not_found("cifar10", folder, download, why or "the download left no files", place)
        for n in names:
            path = os.path.join(folder, n)
            with open(path, "rb") as f:
                batches.append(read_batch(f, path))
    images = np.concatenate([b[0] for b in batches]).reshape(-1, 3, 32, 32)  # rows are R, G, B planes of 32x32
    labels = np.concatenate([b[1] for b in batches])
    return ImageData("cifar10", torch.from_numpy(images), torch.from_numpy(labels), num_classes=10, classes=CLASSES)
