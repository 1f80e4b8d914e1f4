"""A draw kept on disk chunk by chunk, so that an interrupted evaluation continues where it stopped.

The folder PATH holds ``key.pt`` (what is drawn: the sampling network's tag, the sampling settings, the seed and
the device) and one ``chunk-<start>.pt`` per finished chunk (images start, start + 1, ... of the draw and the
seconds they took). Every file is written atomically and once: a draw of n images writes each image once, however
small its chunks. A folder of another draw, or one that cannot be read, is reported and started over. Only those
files are ever removed (then the folder, if nothing else is in it): a folder shared with other files keeps them.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Dict, List, Tuple

import torch

from ._io import PathLike, atomic_write, check_writable, load_tensors

__all__ = ["PartialDraw", "FORMAT", "check_partial_folder", "remove_draw"]

FORMAT = "fastddgan-partial-draw/2"
_CHUNK = re.compile(r"chunk-(\d{10})\.pt")


def check_partial_folder(path: PathLike, name: str) -> None:
    """Raise a one-line ValueError naming the argument ``name`` unless ``path`` is a folder, or a new path, where a
    partial draw can be kept (its parent made if missing; the folder itself comes with the first chunk): before
    the sampling. A file there is refused, never removed."""
    path = os.fspath(path)
    _refuse_a_file(path, name)
    check_writable(os.path.join(path, "key.pt") if os.path.isdir(path) else path, name)


def _refuse_a_file(path: str, name: str) -> None:
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ValueError(f"{name}: {path!r} is a file; expected the folder of a partial draw (or a new path)")


def remove_draw(path: PathLike) -> None:
    """Delete a draw's files (key.pt, chunk-*.pt) in the folder ``path``, then the folder if that left it empty;
    nothing else (no-op when there is no folder)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return
    for name in os.listdir(path):
        if name == "key.pt" or _CHUNK.fullmatch(name):
            os.remove(os.path.join(path, name))
    try:
        os.rmdir(path)
    except OSError:  # other files are there: they stay, and so does the folder
        pass


class PartialDraw:
    """The finished chunks of the draw ``key`` (a dict of plain values; ``key["n"]`` images in all) in ``path``."""

    def __init__(self, path: PathLike, key: Dict[str, Any]):
        self.path = os.fspath(path)
        self.key = {"format": FORMAT, **key}
        self.n = int(key["n"])

    def _chunk_path(self, start: int) -> str:
        return os.path.join(self.path, f"chunk-{start:010d}.pt")

    def resume(self) -> Tuple[List[torch.Tensor], float]:
        """([the images drawn so far, chunk by chunk], seconds they took): ([], 0) when there is no folder, and
        with a warning (the folder removed) when it is another draw's or unreadable."""
        _refuse_a_file(self.path, "partial")
        if not os.path.lexists(self.path):
            return [], 0.0
        why = self._mismatch()
        if why is not None:
            print(f"warning: {self.path} is {why}; drawing from the start", file=sys.stderr)
            self.remove()
            return [], 0.0
        parts, seconds, start = [], 0.0, 0
        while start < self.n and os.path.isfile(self._chunk_path(start)):
            try:
                state = load_tensors(self._chunk_path(start))
                x, spent = state["samples"], float(state["seconds"])
                if not (isinstance(x, torch.Tensor) and 0 < x.shape[0] <= self.n - start):
                    raise ValueError(f"{x.shape[0] if isinstance(x, torch.Tensor) else 'no'} images")
            except (ValueError, KeyError, TypeError) as err:
                print(f"warning: {self._chunk_path(start)} is unreadable ({err}); drawing from image {start}",
                      file=sys.stderr)
                break
            parts.append(x.float())
            seconds += spent
            start += x.shape[0]
        self._drop_chunks_from(start)
        if parts:
            print(f"resuming the draw from {self.path}: {start} of {self.n} images drawn", file=sys.stderr)
        return parts, seconds

    def _mismatch(self):
        """Why the folder cannot be continued (None when it can)."""
        key_file = os.path.join(self.path, "key.pt")
        if not os.path.exists(key_file) and not any(_CHUNK.fullmatch(name) for name in os.listdir(self.path)):
            return None  # an empty folder: nothing drawn yet
        try:
            stored = load_tensors(key_file)
        except ValueError as err:
            return f"unreadable ({err})"
        if stored != self.key:
            return "another draw (network, sampling settings or device differ)"
        return None

    def _drop_chunks_from(self, start: int) -> None:
        """Remove the chunk files at ``start`` and after (not reachable from the chunks before)."""
        for name in os.listdir(self.path):
            match = _CHUNK.fullmatch(name)
            if match and int(match.group(1)) >= start:
                os.remove(os.path.join(self.path, name))

    def append(self, start: int, samples: torch.Tensor, seconds: float) -> None:
        """Keep images ``start`` .. ``start + len(samples) - 1`` of the draw and the ``seconds`` they took."""
        key_file = os.path.join(self.path, "key.pt")
        if not os.path.isfile(key_file):
            atomic_write(key_file, lambda f: torch.save(self.key, f))
        chunk = {"samples": samples.detach().float().cpu().contiguous(), "seconds": float(seconds)}
        atomic_write(self._chunk_path(start), lambda f: torch.save(chunk, f))

    def remove(self) -> None:
        """Delete the draw's files, then the folder if that left it empty (:func:`remove_draw`)."""
        remove_draw(self.path)
