"""Atomic file writes: write a temporary file in the target folder, fsync, then ``os.replace`` it into place, so a
crash or a full disk never leaves a half-written file under the final name (the previous file stays intact). Files
get the mode a plain ``open(path, "w")`` would give (0666 less the umask). And :func:`load_tensors`: ``torch.load``
that never runs code from the file; :func:`load_versioned`: the same for our own ``{"format", "version"}`` files."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from typing import Any, Callable, Dict, IO, List, Union

PathLike = Union[str, os.PathLike]
TMP_PREFIX = ".tmp-"  # the temporary files of atomic_write (a kill -9 can leave one behind; see remove_stale_tmp)


def _umask() -> int:
    """The process's umask: read from /proc on Linux (setting it to read it back would race with other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(f)`` on a binary temporary file next to ``path``, then rename it to ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes it 0600
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def check_writable(path: PathLike, name: str) -> None:
    """Raise a one-line ValueError naming the argument ``name`` unless a file can be written at ``path`` (making its
    folder if missing): for checking an output path before the long work whose result goes there."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{name}: {path!r} is a folder; expected the path of a file to write")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
        os.close(fd)
        os.remove(tmp)
    except OSError as err:
        raise ValueError(f"{name}: cannot write {path!r} ({err.strerror or err})") from None


def remove_stale_tmp(folder: PathLike, suffix: str = "") -> List[str]:
    """Remove the temporary files of :func:`atomic_write` (ending in ``suffix``) that a killed writer left in
    ``folder``; returns their paths. Only for a folder no other process is writing to (e.g. under a run lock)."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return []
    removed = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name.startswith(TMP_PREFIX) and name.endswith(suffix) and os.path.isfile(path):
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed


def load_tensors(path: PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(path, map_location, weights_only=True)``: tensors and plain Python values only, so that no code
    in the file runs. Anything else raises a ValueError whose message is one line saying why."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - anything torch cannot read safely
        text = str(err)
        if "Weights only load failed" in text:  # torch's message: paragraphs of advice around the reason
            match = re.search(r"WeightsUnpickler error: (.*?)(?: Please use|$)", " ".join(text.split()))
            reason = match.group(1).rstrip(". ") if match else "a global that is not allowed"
            raise ValueError(f"it holds more than tensors and plain values, and loading it could run code from the "
                             f"file (refused: {reason[:200]})") from None
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            raise ValueError("it is empty (0 bytes)") from None
        why = one_line(text)
        raise ValueError(f"it is not a torch file, or it is truncated or corrupt ({type(err).__name__}"
                         + (f": {why})" if why else ")")) from None


def load_versioned(path: PathLike, fmt: str, version: int, kind: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """The dict saved at ``path`` by a fastddgan writer of ``{"format": fmt, "version": version, ...}`` files, read
    with :func:`load_tensors`; errors name the argument ``path`` and say which ``kind`` of file was expected
    (missing, unreadable, another format, another version)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no {kind} at {path!r}")
    try:
        state = load_tensors(path, map_location)
    except ValueError as err:
        raise ValueError(f"path: {path!r} is not a fastddgan {kind}: {err}") from None
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise ValueError(f"path: {path!r} is not a fastddgan {kind} (no 'format': {fmt!r} entry)")
    if state.get("version") != version:
        raise ValueError(f"path: {path!r} has {kind} version {state.get('version')!r}; this fastddgan reads "
                         f"version {version}")
    return state


def one_line(text: str, limit: int = 200) -> str:
    """The first sentence of an error message, on one line (at most ``limit`` characters)."""
    text = " ".join(text.split())
    return text.split(". ")[0][:limit]


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (in dicts, lists, tuples) replaced by None: strict JSON has no
    NaN / Infinity literals, and other readers (jq, JavaScript, many JSON libraries) refuse them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def json_text(obj: Any, **kwargs) -> str:
    """``json.dumps`` of :func:`json_safe` ``(obj)`` (non-finite floats as null; other values by ``str``)."""
    return json.dumps(json_safe(obj), allow_nan=False, default=str, **kwargs)


def atomic_write_json(path: PathLike, obj: Any) -> None:
    text = json_text(obj, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def read_jsonl(path: PathLike) -> List[Dict[str, Any]]:
    """The records of a JSON-lines file ([] when it does not exist); a line cut short by a kill is skipped."""
    if not os.path.isfile(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records
