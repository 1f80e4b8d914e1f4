"""Downloads of fashion-mnist, mnist and cifar10 with torchvision, and the errors when their files are missing.

torchvision writes into a fresh temporary folder inside data_dir that is moved into place only when the download
and extraction succeeded, so a failed download leaves nothing behind that could later look valid; each socket
operation times out after ``DOWNLOAD_TIMEOUT`` seconds. The readers (``idx``, ``cifar10``) call ``fetch`` through
this module, so a test can replace it.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from typing import Optional

from .dataset import DataNotFoundError

DOWNLOAD_TIMEOUT = 30.0  # seconds without progress on one socket operation before a download attempt gives up
TORCHVISION = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST", "cifar10": "CIFAR10"}  # name: torchvision class
NO_DOWNLOAD_HINT = "or use --dataset mnist5k, which needs no download"


def reason(err: BaseException) -> str:
    """An exception as one short line: its type and the last line of its message (at most 200 characters)."""
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


def fetch(name: str, data_dir: str, train: bool) -> Optional[str]:
    """Download ``name`` with torchvision into ``data_dir``; None on success, else why it failed (one line).

    torchvision writes into a fresh temporary folder inside data_dir; only a complete, checksum-verified download
    is moved into place, and the temporary folder is removed whatever happens. Every socket operation times out
    after DOWNLOAD_TIMEOUT seconds (``socket.setdefaulttimeout``, process-wide while the download runs).
    """
    staging = None
    previous_timeout = socket.getdefaulttimeout()
    try:
        from torchvision import datasets
        cls = getattr(datasets, TORCHVISION[name])
        os.makedirs(data_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".download-", dir=data_dir)
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
        cls(root=staging, train=train, download=True)
        _move_tree(staging, data_dir)
        return None
    except Exception as err:  # network errors come as URLError, OSError, RuntimeError, http.client errors, ...
        return reason(err)
    finally:
        socket.setdefaulttimeout(previous_timeout)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def not_found(name: str, folder: str, download: bool, why: Optional[str], place: str) -> DataNotFoundError:
    """The error for a set whose files are not in ``folder``: why the download failed, and what to place there."""
    how = f" and could not be downloaded (no network? {why})" if download else " (download=False)"
    return DataNotFoundError(f"{name}: not found in {folder}{how}. {place}")
