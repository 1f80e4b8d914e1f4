"""``folder:PATH`` data sets: every image under PATH (recursive), resized and centre-cropped to a square.

Files: .png .jpg .jpeg .bmp .webp .gif (any case), found recursively (symbolic links followed, hidden files and
folders skipped), in sorted path order. Labels: when PATH holds no images itself and at least two of its
sub-folders hold images, each such sub-folder is a class (sorted names, ``ds.classes``; sub-folders without images
are ignored); otherwise the set is unlabelled (labels -1, num_classes None).

Each image: EXIF orientation applied; transparency composited onto white; 16-bit greyscale scaled to 8 bits
(x / 257); converted to RGB (``channels=3``,
default) or greyscale (``channels=1``); the shorter side resized to ``image_size`` (bicubic, antialiased; JPEGs
first decoded at the smallest DCT scale that is still at least that size) and the centre square cropped.

Only regular files count (a FIFO, socket or device named ``*.png`` is passed over: opening one would block).
Files that PIL cannot open, or that fail its ``verify()`` (for PNG: every chunk present with a correct CRC, which
catches truncated files without decoding them), are skipped with one warning giving their number (checked when the
set is built). By default images are decoded lazily in ``ds[i]`` (``ds.images`` and ``ds.labels`` are None; use a
DataLoader with workers); ``cache=True`` decodes them all up front into ``ds.images`` / ``ds.labels`` like the
in-memory sets (N * C * image_size^2 bytes), skipping files that fail to decode, with the same warning. A file that
passed the check but fails to decode in ``ds[i]`` (a truncated JPEG, a file changed since) is replaced by the next
image of the set that decodes (i + 1, i + 2, ...), with a warning naming it: the same index always gives the same
image, so training stays deterministic and a resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

import numpy as np
import torch

from .. import _checks
from .dataset import DataNotFoundError, ImageData

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _is_image_file(path: str) -> bool:
    """An image's name, and a regular file (after links): never a FIFO or device, whose open would block."""
    return _is_image(os.path.basename(path)) and os.path.isfile(path)


def _images_under(root: str) -> List[str]:
    """Sorted image paths under root, recursively, following links but visiting each real folder once."""
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(p for p in (os.path.join(dirpath, f) for f in filenames) if _is_image_file(p))
    return sorted(found)


def scan_folder(root: str) -> Tuple[List[str], Optional[List[int]], Optional[List[str]]]:
    """(image paths, labels or None, class names or None) of a folder, by the rules in the module docstring."""
    entries = sorted(e for e in os.listdir(root) if not e.startswith("."))
    top = [p for p in (os.path.join(root, e) for e in entries) if _is_image_file(p)]
    subdirs = [e for e in entries if os.path.isdir(os.path.join(root, e))]
    per_dir = {d: _images_under(os.path.join(root, d)) for d in subdirs}
    classes = [d for d in subdirs if per_dir[d]]
    if not top and len(classes) >= 2:
        files, labels = [], []
        for k, d in enumerate(classes):
            files += per_dir[d]
            labels += [k] * len(per_dir[d])
        return files, labels, classes
    return sorted(top + [f for d in subdirs for f in per_dir[d]]), None, None


def _readable(path: str) -> bool:
    """PIL reads the header and ``verify()`` passes (PNG: all chunks and their CRCs, so a truncated file fails)."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            w, h = im.size
            im.verify()
        return w > 0 and h > 0
    except Exception:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError, ... for bad files
        return False


def load_image(path: str, image_size: int, channels: int = 3) -> torch.Tensor:
    """One image file as uint8 (channels, image_size, image_size): shorter side resized, centre crop."""
    from PIL import Image, ImageOps
    with Image.open(path) as im:
        w, h = im.size
        scale = image_size / min(w, h)
        if im.format == "JPEG" and scale < 1:  # decode at a reduced DCT scale that is still >= the target size
            im.draft(im.mode, (math.ceil(w * scale), math.ceil(h * scale)))
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info) or \
                (im.mode in ("RGB", "L") and "transparency" in im.info):
            rgba = im.convert("RGBA")
            im = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im.alpha_composite(rgba)
        if im.mode.startswith("I;16") or im.mode == "I":  # 16-bit greyscale: scale, don't clip, to 8 bits
            a = np.asarray(im).astype(np.float64) / 257.0
            im = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
        im = im.convert("L" if channels == 1 else "RGB")
        w, h = im.size
        scale = image_size / min(w, h)
        size = (max(image_size, round(w * scale)), max(image_size, round(h * scale)))
        if size != (w, h):
            im = im.resize(size, Image.BICUBIC)
        left, top = (size[0] - image_size) // 2, (size[1] - image_size) // 2
        im = im.crop((left, top, left + image_size, top + image_size))
        a = np.asarray(im, dtype=np.uint8)
    t = torch.from_numpy(a.copy())
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def _warn_skipped(root: str, skipped: List[str]) -> None:
    if skipped:
        names = ", ".join(os.path.relpath(p, root) for p in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.warn(f"folder:{root}: skipped {len(skipped)} file{'s' if len(skipped) > 1 else ''} that could not "
                      f"be read as images ({names})", stacklevel=3)


class ImageFolderData(ImageData):
    """``folder:PATH``: images found under ``root`` (see the module docstring), as uint8 (channels, S, S)."""

    def __init__(self, root: str, image_size: Optional[int] = None, channels: Optional[int] = None,
                 cache: bool = False, name: Optional[str] = None):
        if image_size is None:
            raise ValueError(f"image_size: required for folder:{root} (the side of the square images, e.g. 64)")
        _checks.integer("image_size", image_size, 1, integral=True)
        if channels not in (None, 1, 3):
            raise ValueError(f"channels: expected None, 1 (greyscale) or 3 (RGB) for a folder, got {channels!r}")
        self.root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        self.name = name or f"folder:{root}"
        if not os.path.exists(self.root):
            raise DataNotFoundError(f"{self.name}: folder {self.root} does not exist")
        if not os.path.isdir(self.root):
            raise DataNotFoundError(f"{self.name}: {self.root} is not a folder")
        files, labels, classes = scan_folder(self.root)
        readable = [_readable(f) for f in files]
        skipped = [f for f, ok in zip(files, readable) if not ok]
        keep = [i for i, ok in enumerate(readable) if ok]
        self.files = [files[i] for i in keep]
        self.channels, self.image_size = int(channels or 3), int(image_size)
        self.classes = classes
        self.num_classes = len(classes) if classes else None
        self._labels = [labels[i] for i in keep] if labels is not None else [-1] * len(keep)
        self.images = self.labels = None
        self._warned: set = set()  # files that failed to decode in __getitem__ (one warning each)
        if cache and self.files:
            def decode(path):
                try:
                    return load_image(path, self.image_size, self.channels)
                except Exception:
                    return None
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                decoded = list(pool.map(decode, self.files))
            ok = [i for i, x in enumerate(decoded) if x is not None]
            skipped += [self.files[i] for i, x in enumerate(decoded) if x is None]
            self.files = [self.files[i] for i in ok]
            self._labels = [self._labels[i] for i in ok]
            if ok:
                self.images = torch.stack([decoded[i] for i in ok]).contiguous()
                self.labels = torch.tensor(self._labels, dtype=torch.int64)
        _warn_skipped(self.root, sorted(skipped))
        if not self.files:
            raise DataNotFoundError(f"{self.name}: no readable images ({', '.join(IMAGE_EXTENSIONS)}) found in "
                                    f"{self.root} (searched recursively)")

    def __len__(self) -> int:
        return len(self.files)

    def fingerprint(self) -> str:
        """A short hash of the set: its name, number of images, channels and size, and the sorted file list with
        each file's size and modification time (the pixels are not read)."""
        h = hashlib.sha1(f"{self.name}|{len(self)}|{self.channels}|{self.image_size}".encode())
        for path in self.files:
            st = os.stat(path)
            h.update(f"{os.path.relpath(path, self.root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:12]

    def __getitem__(self, index: int):
        if self.images is not None:
            return self.images[index], self._labels[index]
        n = len(self.files)
        index = range(n)[index]  # negative indices; IndexError past the end
        first_error = None
        for k in range(n):
            i = (index + k) % n
            try:
                image = load_image(self.files[i], self.image_size, self.channels)
            except Exception as err:  # noqa: BLE001 - a file PIL cannot decode (truncated, changed since the scan)
                first_error = first_error or err
                continue
            if i != index and index not in self._warned:
                self._warned.add(index)
                warnings.warn(f"{self.name}: cannot decode {self.files[index]} ({type(first_error).__name__}: "
                              f"{first_error}); using {os.path.relpath(self.files[i], self.root)} in its place",
                              stacklevel=2)
            return image, self._labels[i]
        raise OSError(f"{self.name}: none of the {n} images decodes (the first error: "
                      f"{type(first_error).__name__}: {first_error})")
