"""pytest setup shared by tests/ and benchmarks/: the thread policy, and whether this run times benchmarks.

One CPU thread per process (``FASTDDGAN_TEST_THREADS`` changes it), also for the processes the tests start, unless
the run times benchmarks (``--benchmark-only`` and friends), which keep torch's choice. The tests use tiny models,
which gain nothing from more threads; with several threads per process, two processes on a busy 2-core machine
spin-wait on each other and run 10-100x slower. The C++ kernels' multi-thread path has its own test
(tests/test_backends.py).
"""

import os

import pytest
import torch

# Options of pytest-benchmark 5.x (dest names of its ``--benchmark-*`` flags) that ask for real timings.
TIMING_OPTIONS = ("benchmark_only", "benchmark_enable", "benchmark_json", "benchmark_save", "benchmark_autosave")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.fastddgan_timings = any(config.getoption(name, None) for name in TIMING_OPTIONS)
    if not config.fastddgan_timings:
        threads = int(os.environ.get("FASTDDGAN_TEST_THREADS", "1"))
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
