"""What machine a measurement ran on, in a few words: wall times and images/s depend on it, and a study spread over
sessions may run on several (e.g. one VM with AVX-512 and AMX, the next with AVX2 only, about half as fast)."""

from __future__ import annotations

import os
import platform
from typing import Optional

import torch


UNRECORDED = "not recorded"  # the machine of a time measured before machines were recorded


def _cpuinfo(key: str, cpuinfo: str) -> Optional[str]:
    """The value of the first ``key : value`` line of Linux's ``/proc/cpuinfo`` (None without the file or key)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    return _cpuinfo("model name", cpuinfo) or platform.processor() or "unknown CPU"


def _has_amx(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """AMX tiles (``amx_tile`` among the flags): oneDNN's bf16 matrix units, which change CPU speeds the most."""
    return "amx_tile" in (_cpuinfo("flags", cpuinfo) or "").split()


def machine_label(device: Optional[str] = None, cpuinfo: str = "/proc/cpuinfo") -> str:
    """One line naming where code runs: the GPU's name for a CUDA device; otherwise the CPU's model, the vector
    instructions torch's CPU kernels use (``torch.backends.cpu.get_cpu_capability``: AVX2, AVX512, ...), AMX when
    present and the core count, e.g. ``"AMD EPYC (AVX2, 2 cores)"``."""
    if device is not None and torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    features = []
    capability = getattr(torch.backends.cpu, "get_cpu_capability", None)
    if capability is not None:
        features.append(capability())
    if _has_amx(cpuinfo):
        features.append("AMX")
    cores = os.cpu_count()
    features.append(f"{cores} core{'s' if cores != 1 else ''}" if cores else "cores unknown")
    return f"{cpu_name(cpuinfo)} ({', '.join(features)})"
