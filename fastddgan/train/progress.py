"""Progress of a training run on the terminal: a tqdm bar on a terminal (process 0), plain log lines otherwise;
durations and counts in words."""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Dict, Optional, Tuple

import torch

from ..metric_keys import per_step_divergence_t


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def duration(seconds: float) -> str:
    """``seconds`` in the unit a person reads best (s, min, h, days); "unknown time" for NaN or infinity."""
    if not 0 <= seconds < math.inf:  # NaN or infinite (no speed measured yet)
        return "unknown time"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days" if seconds < 1e9 else f"{seconds / 86400:.2g} days"


def memory_use(device: torch.device) -> Tuple[Optional[int], Optional[int]]:
    """(peak bytes this run has used, bytes the device has): on a GPU the caching allocator's peak and the card's
    memory; on a CPU the process's peak resident set and the machine's RAM (None where the platform cannot say)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), torch.cuda.get_device_properties(device).total_memory
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    except (ImportError, OSError):
        peak = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = None
    return peak, total


# The presets sized for CPU training (a long CPU run with another preset suggests them).
CPU_PRESETS = ("mnist-cpu", "tiny")


def long_run_warning(seconds_left: float, preset: str, net: Optional[str], batch_size: int, steps: int,
                     limit_s: float = 2 * 3600) -> Optional[str]:
    """The warning for an image run on a CPU that needs more than ``limit_s`` seconds (None if it does not): what
    makes it long and what would shorten it (the CPU presets only to a run that does not use one already)."""
    if not seconds_left > limit_s:
        return None
    if net:
        nets = f"the {preset!r} networks with --net {net}"
    else:
        nets = f"the {preset!r} networks (sized for {'a CPU' if preset in CPU_PRESETS else 'a GPU'})"
    if preset in CPU_PRESETS:  # already a CPU preset: smaller only by dropping the overrides that grew it
        smaller = f"the {preset!r} networks without --net, " if net else ""
    else:
        smaller = f"a smaller --preset ({', '.join(CPU_PRESETS)}), "
    return (f"warning: this run needs about {duration(seconds_left)} on this CPU (over {duration(limit_s)}): {nets} "
            f"at --batch-size {batch_size} for {steps} steps; for a shorter run choose {smaller}fewer --steps, "
            f"or train on a GPU")


class Progress:
    """tqdm on a terminal (process 0); plain log lines otherwise."""

    def __init__(self, total: int, initial: int, active: bool):
        self.bar = None
        self.active = active
        if active and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=initial, dynamic_ncols=True, unit="it")
            except ImportError:
                self.bar = None

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def show(self, record: Dict[str, Any], total: int) -> None:
        losses = {k: v for k, v in record.items()  # the per-step bounds (divergence_t0, ...) only in metrics.jsonl
                  if k.startswith(("loss", "divergence", "r1", "gp")) and per_step_divergence_t(k) is None}
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)
        elif self.active:
            eta = (total - record["step"]) / max(record["it_per_s"], 1e-9)
            text = " | ".join(f"{k} {v:.4g}" for k, v in losses.items())
            print(f"step {record['step']}/{total} | {text} | {record['it_per_s']:.1f} it/s | eta {duration(eta)}",
                  flush=True)

    def write(self, text: str, file) -> None:
        """One line of text above the bar (tqdm's write clears and redraws it), so that a message printed while
        the bar runs does not land in the middle of it; a plain print without a bar."""
        if self.bar is not None:
            self.bar.write(text, file=file)
        else:
            print(text, file=file, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["Progress", "plural", "duration"]
