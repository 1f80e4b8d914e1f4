"""The run folder of ``python -m fastddgan.train``:

    OUT/config.json            the resolved config (every option, "auto" values filled in)
    OUT/metrics.jsonl          one JSON record per log interval (and events: resumed, nonfinite, stopped)
    OUT/samples/step-N.png     sample grids from a fixed seed, captioned (2-D data: scatter plots, model against data)
    OUT/curves.png             training curves (losses, divergence estimate, penalties, lr, it/s), redrawn with
                               every sample grid
    OUT/checkpoints/ckpt-N.pt  the last --keep periodic checkpoints; final.pt at the end (or on SIGINT/SIGTERM)
    OUT/export/                the EMA network as safetensors + config.json (at the end)
    OUT/tensorboard/           when tensorboard is installed

Only process 0 writes. Every file is written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import torch

from .._io import atomic_write, atomic_write_json, read_jsonl

_CKPT = re.compile(r"^ckpt-(\d+)\.pt$")
FINAL = "final.pt"


class RunFolder:
    def __init__(self, out: str, active: bool = True):
        self.out = os.path.abspath(out)
        self.active = active
        self.config_path = os.path.join(self.out, "config.json")
        self.metrics_path = os.path.join(self.out, "metrics.jsonl")
        self.samples = os.path.join(self.out, "samples")
        self.checkpoints = os.path.join(self.out, "checkpoints")
        self._tb = None

    # ------------------------------------------------------------------ state of the folder
    def holds_run(self) -> bool:
        return os.path.isfile(self.config_path) or bool(self.list_checkpoints())

    def list_checkpoints(self) -> List[Tuple[int, str]]:
        """(step, path) of the checkpoints, newest first; final.pt (the end of a run) is listed first, with the
        placeholder step 2**62 (its real step is inside the file)."""
        if not os.path.isdir(self.checkpoints):
            return []
        found = []
        for name in os.listdir(self.checkpoints):
            m = _CKPT.match(name)
            if m:
                found.append((int(m.group(1)), os.path.join(self.checkpoints, name)))
            elif name == FINAL:
                found.append((2**62, os.path.join(self.checkpoints, name)))
        return sorted(found, reverse=True)

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
        keep = "".join(json.dumps(r) + "\n" for r in self.read_metrics() if r.get("step", 0) <= step)
        atomic_write(self.metrics_path, lambda f: f.write(keep.encode()))

    def log(self, record: Dict[str, Any]) -> None:
        if not self.active:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None and "event" not in record:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self._tb.add_scalar(key, value, record["step"])

    def prune(self, keep: int) -> None:
        """Keep the newest ``keep`` periodic checkpoints (final.pt is never removed)."""
        if not self.active:
            return
        periodic = [(s, p) for s, p in self.list_checkpoints() if os.path.basename(p) != FINAL]
        for _, path in periodic[keep:]:
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
        if self._tb is not None:
            self._tb.close()
