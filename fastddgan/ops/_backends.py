"""Which implementation runs the fused ops: loading, availability and the one choice of a backend.

Backends
    torch   pure-PyTorch reference (``reference.py``); noise from ``torch.randn`` and the torch Generator.
    cpp     C++ CPU kernels, ``fastddgan._C`` (registered for the CPU dispatch key of ``torch.ops.fastddgan``).
    cuda    CUDA C++ kernels, ``fastddgan._C_cuda`` (registered for the CUDA dispatch key).
    triton  Triton kernels, ``fastddgan.kernels.backend`` (GPU; CPU only under ``TRITON_INTERPRET=1``).

:func:`select` is the only place that chooses. Automatic choice: ``cpp`` on CPU, ``cuda`` then ``triton`` on GPU,
``torch`` where nothing faster is available (with one warning). A choice is forced by, in order:

* :func:`use_backend` (a context manager) or :func:`set_backend`: context-local, a :class:`contextvars.ContextVar`,
  so a choice made in one thread (or asyncio task) never changes another's; ``None``/``'auto'`` asks for the
  automatic choice, ignoring the variable below;
* ``FASTDDGAN_BACKEND=torch|cpp|cuda|triton``, read once at import: the default of every context.

Forcing a backend that cannot run on a tensor's device raises :class:`BackendUnavailable`, one line that names what
forced it and says why. A bad value of the variable is reported when the ops are first used, not at import (so the
command-line tools can say so in one line).
"""

from __future__ import annotations

import contextvars
import importlib
import os
import warnings
from contextlib import contextmanager
from typing import Dict, NamedTuple, Optional

import torch

BACKENDS = ("torch", "cpp", "cuda", "triton")
_MODULES = {"cpp": "fastddgan._C", "cuda": "fastddgan._C_cuda", "triton": "fastddgan.kernels.backend"}
_loaded: Dict[str, object] = {}
_load_errors: Dict[str, str] = {}
_warned = False


def _check_name(name: Optional[str], what: str) -> Optional[str]:
    if name in (None, "", "auto"):
        return None
    if name not in BACKENDS:
        raise ValueError(f"{what}: expected one of {BACKENDS} or 'auto', got {name!r}")
    return name


class BackendUnavailable(RuntimeError, ValueError):
    """A forced backend cannot run on a tensor's device. Also a ValueError: bad input, which the command-line tools
    report in one line (exit 2)."""


class Choice(NamedTuple):
    """A forced choice: the backend (None: automatic), what forced it, and the error of a bad variable."""

    name: Optional[str]
    by: str  # "use_backend" / "set_backend" or "FASTDDGAN_BACKEND"
    error: Optional[str] = None


def _from_environment() -> Choice:
    try:
        return Choice(_check_name(os.environ.get("FASTDDGAN_BACKEND"), "FASTDDGAN_BACKEND"), "FASTDDGAN_BACKEND")
    except ValueError as err:
        return Choice(None, "FASTDDGAN_BACKEND", str(err))


ENVIRONMENT = _from_environment()
_choice: contextvars.ContextVar[Choice] = contextvars.ContextVar("fastddgan_backend", default=ENVIRONMENT)


def module(name: str):
    """The module implementing backend ``name`` (``cpp``/``cuda``: the extension whose import registers its kernels;
    ``triton``: the launchers), or None if it cannot load."""
    if name not in _loaded and name not in _load_errors:
        try:
            _loaded[name] = importlib.import_module(_MODULES[name])
        except Exception as err:  # noqa: BLE001 - a missing or broken optional part must not break the package
            _load_errors[name] = f"{_MODULES[name]} could not be imported ({type(err).__name__}: {err})"
    return _loaded.get(name)


def _triton_on_cpu() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def why_unavailable(name: str, device_type: str) -> Optional[str]:
    """None if backend ``name`` can run on ``device_type`` tensors, else the reason."""
    if name == "torch":
        return None
    if name == "cpp" and device_type != "cpu":
        return f"the cpp backend runs on CPU tensors only, got {device_type}"
    if name == "cuda" and device_type != "cuda":
        return f"the cuda backend runs on CUDA tensors only, got {device_type}"
    if name == "triton" and device_type == "cpu" and not _triton_on_cpu():
        return "the triton backend runs on CPU tensors only with TRITON_INTERPRET=1 set before import"
    if name == "triton" and device_type not in ("cpu", "cuda"):
        return f"the triton backend does not support {device_type} tensors"
    if module(name) is None:
        return _load_errors[name]
    return None


def available(device_type: str):
    """Backends that can run on tensors of ``device_type`` here."""
    return [name for name in BACKENDS if why_unavailable(name, device_type) is None]


def select(device: torch.device) -> str:
    """The backend that runs the fused ops for tensors on ``device`` in the current context."""
    global _warned
    choice = _choice.get()
    if choice.error is not None:
        raise ValueError(choice.error)
    if choice.name is not None:
        reason = why_unavailable(choice.name, device.type)
        if reason is not None:
            if choice.by != "FASTDDGAN_BACKEND":
                raise BackendUnavailable(f"fastddgan backend {choice.name!r} was requested but {reason}")
            raise BackendUnavailable(f"FASTDDGAN_BACKEND: fastddgan backend {choice.name!r} was requested but "
                                     f"{reason}; unset it (or set it to auto) for the automatic choice")
        return choice.name
    preferred = ("cpp",) if device.type == "cpu" else ("cuda", "triton") if device.type == "cuda" else ()
    for name in preferred:
        if why_unavailable(name, device.type) is None:
            return name
    if preferred and not _warned:
        _warned = True
        reasons = "; ".join(why_unavailable(name, device.type) for name in preferred)
        warnings.warn(f"fastddgan: no fused backend for {device.type} tensors ({reasons}); using the pure-PyTorch "
                      "reference. Rebuild with `pip install --no-build-isolation -e .` for the fused kernels.",
                      RuntimeWarning, stacklevel=3)
    return "torch"


@contextmanager
def use_backend(name: Optional[str]):
    """Run the ops of this block (in this thread or task) on backend ``name``; ``None`` or ``'auto'``: the automatic
    choice (FASTDDGAN_BACKEND ignored). The previous choice is restored on exit."""
    token = _choice.set(Choice(_check_name(name, "name"), "use_backend"))
    try:
        yield
    finally:
        _choice.reset(token)


def set_backend(name: Optional[str]) -> None:
    """Force a backend for the rest of the current context (thread or asyncio task), overriding FASTDDGAN_BACKEND;
    ``None`` or ``'auto'``: the automatic choice. Prefer :func:`use_backend`, which restores the previous choice."""
    _choice.set(Choice(_check_name(name, "name"), "set_backend"))


def get_forced_backend() -> Optional[str]:
    """The backend forced in the current context (by use_backend, set_backend or FASTDDGAN_BACKEND), or None."""
    return _choice.get().name


def _preload() -> None:
    """Import the backends that can be chosen here now: the C++ ones register their kernels with the dispatcher, and
    choosing one later (possibly while torch.compile traces the ops, where imports are not allowed) is a dictionary
    lookup. Triton is imported only where it can run (a visible GPU, or TRITON_INTERPRET=1)."""
    module("cpp")
    if torch.cuda.is_available():
        module("cuda")
    if torch.cuda.is_available() or _triton_on_cpu():
        module("triton")


_preload()
