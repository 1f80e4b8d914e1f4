"""pytest configuration of the benchmark suite (pytest-benchmark).

Two modes:

* ``pytest`` / ``pytest benchmarks`` (no timing option): benchmarks run *disabled*, i.e. every benchmarked
  function runs exactly once as a smoke test (its result is still checked), so the suite stays fast.
* ``pytest --benchmark-only [--benchmark-json=FILE]`` (or ``--benchmark-enable``, ``--benchmark-json``,
  ``--benchmark-save``, ``--benchmark-autosave``): real timings, as pytest-benchmark normally does.

``python benchmarks/report.py FILE.json`` turns a ``--benchmark-json`` file into a Markdown table.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone

import torch


def pytest_configure(config):
    # pytest-benchmark reads ``benchmark_disable`` in its own (trylast) pytest_configure, which runs after this one
    # because benchmarks/conftest.py is an initial conftest (benchmarks/ is in testpaths or given on the command line).
    if not hasattr(config.option, "benchmark_disable"):  # pytest-benchmark not installed / disabled with -p no:
        return
    if not config.fastddgan_timings:  # set by the root conftest.py (tryfirst)
        config.option.benchmark_disable = True
        bs = getattr(config, "_benchmarksession", None)
        if bs is not None:  # this conftest was loaded late (after pytest-benchmark configured itself)
            bs.disabled = True


def pytest_report_header(config):
    if not hasattr(config.option, "benchmark_disable"):
        return None
    if config.option.benchmark_disable and not config.getoption("benchmark_enable", False):
        return "benchmarks: disabled (each benchmarked function runs once); use --benchmark-only for timings"
    return None


def _cuda_info():
    if not torch.cuda.is_available():
        return None
    index = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "memory_gib": round(props.total_memory / 2**30, 1),
        "count": torch.cuda.device_count(),
        "cuda_version": torch.version.cuda,
    }


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch_version"] = torch.__version__
    machine_info["torch_num_threads"] = torch.get_num_threads()
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["cuda"] = _cuda_info()
    machine_info["cuda_device_name"] = machine_info["cuda"]["name"] if machine_info["cuda"] else None
    machine_info["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine_info.setdefault("platform", platform.platform())
    try:
        import fastddgan

        machine_info["fastddgan_version"] = fastddgan.__version__
        machine_info["fastddgan_backends"] = {
            "cpu": fastddgan.ops.available("cpu"),
            "cuda": fastddgan.ops.available("cuda") if torch.cuda.is_available() else [],
        }
    except Exception as err:  # noqa: BLE001 - machine info must never break the run
        machine_info["fastddgan_error"] = f"{type(err).__name__}: {err}"
