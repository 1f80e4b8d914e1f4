"""The run folder of ``python -m fastddgan.train``:

    OUT/config.json            the resolved config (every option, "auto" values filled in)
    OUT/metrics.jsonl          one JSON record per log interval (and events: resumed, discriminator_flat, ...)
    OUT/samples/step-N.png     sample grids from a fixed seed, captioned (2-D data: scatter plots, model against data)
    OUT/curves.png             training curves (losses, divergence estimate, penalties, lr, it/s), redrawn with
                               every sample grid
    OUT/checkpoints/ckpt-N.pt  the last --keep periodic checkpoints; final.pt at the end (or on SIGINT/SIGTERM)
    OUT/export/                the EMA network as safetensors + config.json (at the end)
    OUT/best/                  with --eval-every: the export of the best-scoring network so far, and its score.json
    OUT/tensorboard/           when tensorboard is installed
    OUT/.lock                  held (flock) by the training writing to OUT: a second one into OUT is refused

Only process 0 writes. Every file is written atomically (temporary file, then rename); the temporary checkpoint
files a kill -9 leaves behind are removed when the next training takes the lock.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional, Tuple

from .._io import atomic_write, atomic_write_json, json_text, read_jsonl, remove_stale_tmp
from ..checkpoint import stored_step
from .config import ConfigError

try:
    import fcntl
except ImportError:  # not on Windows: no locking there
    fcntl = None

_CKPT = re.compile(r"^ckpt-(\d+)\.pt$")
FINAL = "final.pt"
LOCK = ".lock"


class RunFolder:
    def __init__(self, out: str, active: bool = True):
        self.out = os.path.abspath(out)
        self.active = active
        self.config_path = os.path.join(self.out, "config.json")
        self.metrics_path = os.path.join(self.out, "metrics.jsonl")
        self.samples = os.path.join(self.out, "samples")
        self.checkpoints = os.path.join(self.out, "checkpoints")
        self._tb = None
        self._lock = None

    # ------------------------------------------------------------------ one training per folder
    def lock(self) -> List[str]:
        """Take OUT/.lock for this process's life (flock: a crash or kill releases it), or raise a ConfigError if
        another training holds it; then remove the temporary checkpoint files a killed run left (returned)."""
        if not self.active or self._lock is not None:
            return []
        path = os.path.join(self.out, LOCK)
        try:
            os.makedirs(self.out, exist_ok=True)
            f = open(path, "a+")
        except OSError as err:
            raise ConfigError(f"--out: cannot write to {self.out!r} ({err.strerror or err})") from None
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip()
                f.close()
                raise ConfigError(f"--out: another training is writing to {self.out} (process "
                                  f"{holder or 'unknown'} holds {path}); wait for it to end, or choose another "
                                  f"--out") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._lock = f
        return remove_stale_tmp(self.checkpoints, ".pt")

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the flock
            self._lock = None

    # ------------------------------------------------------------------ state of the folder
    def holds_run(self) -> bool:
        return os.path.isfile(self.config_path) or bool(self.list_checkpoints())

    def list_checkpoints(self) -> List[Tuple[int, str]]:
        """(step, path) of the checkpoints, newest first, by the step stored in each file (a file that cannot be
        read ranks by the step in its name, final.pt then last); final.pt first among equal steps."""
        if not os.path.isdir(self.checkpoints):
            return []
        found = []
        for name in os.listdir(self.checkpoints):
            m = _CKPT.match(name)
            if m or name == FINAL:
                path = os.path.join(self.checkpoints, name)
                step = stored_step(path)
                if step is None:
                    step = int(m.group(1)) if m else -1
                found.append((step, name == FINAL, path))
        return [(step, path) for step, _, path in sorted(found, reverse=True)]

    def checkpoint_path(self, step: int) -> str:
        return os.path.join(self.checkpoints, f"ckpt-{step:08d}.pt")

    @property
    def final_path(self) -> str:
        return os.path.join(self.checkpoints, FINAL)

    # ------------------------------------------------------------------ writing
    def prepare(self, config: Dict[str, Any]) -> None:
        if not self.active:
            return
        os.makedirs(self.samples, exist_ok=True)
        os.makedirs(self.checkpoints, exist_ok=True)
        atomic_write_json(self.config_path, config)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(os.path.join(self.out, "tensorboard"))
        except ImportError:  # tensorboard is optional
            self._tb = None

    def truncate_metrics(self, step: int) -> None:
        """Drop records past ``step`` (written after the checkpoint a resumed run starts from)."""
        if not self.active or not os.path.isfile(self.metrics_path):
            return
        keep = "".join(json_text(r) + "\n" for r in self.read_metrics() if r.get("step", 0) <= step)
        atomic_write(self.metrics_path, lambda f: f.write(keep.encode()))

    def log(self, record: Dict[str, Any]) -> None:
        if not self.active:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json_text(record) + "\n")  # a NaN loss is written as null
        if self._tb is not None and "event" not in record:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self._tb.add_scalar(key, value, record["step"])

    def prune(self, keep: int, written: str) -> None:
        """Keep the newest ``keep`` periodic checkpoints and ``written``, the one just written (even when older
        ones of a higher step are in the folder); final.pt is never removed."""
        self._remove_periodic(keep, written)

    def make_room(self, keep: int) -> None:
        """Before a periodic checkpoint is written: keep the newest ``keep - 1`` (at least one), so that the
        folder never needs room for more than ``keep`` of them (and final.pt)."""
        self._remove_periodic(max(keep - 1, 1), None)

    def _remove_periodic(self, keep: int, written: Optional[str]) -> None:
        if not self.active:
            return
        periodic = [p for _, p in self.list_checkpoints() if os.path.basename(p) != FINAL]
        for path in periodic[keep:]:
            if written is None or os.path.abspath(path) != os.path.abspath(written):
                os.remove(path)

    def save_png(self, image, name: str) -> Optional[str]:
        """Write a PIL image as ``name`` (a path inside the run folder) atomically; returns its path."""
        if not self.active:
            return None
        path = os.path.join(self.out, name)
        atomic_write(path, lambda f: image.save(f, format="png"))
        return path

    def sample_name(self, step: int) -> str:
        return os.path.join("samples", f"step-{step:08d}.png")

    def read_metrics(self) -> List[Dict[str, Any]]:
        """The records of metrics.jsonl (a line cut short by a kill is skipped)."""
        return read_jsonl(self.metrics_path)

    def close(self) -> None:
        """Close tensorboard and release the lock."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        self.unlock()
