"""``python -m fastddgan``: what this install can run, and a self-check of the fused ops on every backend.

For each device it lists the backends, then runs a DDGAN T=4 reverse chain with an oracle x0 (the true clean
image in place of a generator) on each backend and checks that (1) the chain ends exactly at x0, (2) the fused
draws agree with the reference on explicit noise, and (3) it times posterior_sample against the eager reference.
"""

from __future__ import annotations

import platform
import sys
import time

import torch

from . import Schedule, __version__, ops
from ._cli import ArgumentParser
from ._machine import cpu_name


def _time(fn, repeats: int, device: torch.device) -> float:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def self_check(device: torch.device, shape=(64, 3, 64, 64), repeats: int = 10) -> bool:
    s = Schedule.ddgan(4)
    g = torch.Generator(device=device).manual_seed(0)
    x0 = torch.rand(shape, device=device, generator=g) * 2 - 1
    noise = torch.randn(shape, device=device, generator=g)
    t_all = [torch.full((shape[0],), k, device=device, dtype=torch.long) for k in range(s.T)]
    ok = True
    with ops.use_backend("torch"):
        reference = ops.posterior_sample(x0, noise, t_all[2], s, noise=noise)
        eager = _time(lambda: ops.posterior_sample(x0, noise, t_all[2], s), repeats, device)
    for backend in ops.available(device.type):
        if backend == "torch" or (backend == "triton" and device.type == "cpu"):
            continue  # the Triton interpreter on CPU is for tests, not for timing
        with ops.use_backend(backend):
            x = ops.q_sample(x0, t_all[-1], s)
            for t in reversed(t_all):  # oracle chain: x_T -> ... -> x_{-1} = x0
                x = ops.posterior_sample(x0, x, t, s)
            chain_error = float((x - x0).abs().max())
            exact_error = float((ops.posterior_sample(x0, noise, t_all[2], s, noise=noise) - reference).abs().max())
            fused = _time(lambda: ops.posterior_sample(x0, noise, t_all[2], s), repeats, device)
        passed = chain_error < 1e-5 and exact_error < 1e-5
        ok &= passed
        gbps = 12 * x0.numel() / fused / 1e9
        print(f"  {backend:6s} {'ok  ' if passed else 'FAIL'} a T=4 chain given the true x0 ends at x0 (max error "
              f"{chain_error:.1e}); on fixed noise it matches the reference (max difference {exact_error:.1e})\n"
              f"         posterior_sample {'x'.join(map(str, shape))} fp32: {fused * 1e3:.3f} ms ({gbps:.1f} GB/s) "
              f"vs eager PyTorch {eager * 1e3:.3f} ms: {eager / fused:.1f}x faster")
    return ok


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m fastddgan", description=__doc__.splitlines()[0])
    parser.add_argument("--no-check", action="store_true", help="only list the backends")
    args = parser.parse_args(argv)
    print(f"fastddgan {__version__}, torch {torch.__version__}, python {platform.python_version()}, "
          f"{torch.get_num_threads()} CPU threads")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    ok = True
    for device in devices:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
        try:
            chosen = ops.select(device)
        except ValueError as err:  # a FASTDDGAN_BACKEND that is not a backend, or cannot run on this device
            print(f"python -m fastddgan: error: {err}", file=sys.stderr)
            return 2
        print(f"{device.type} ({name}): backends {ops.available(device.type)}, automatic choice {chosen!r}")
        if not args.no_check:
            ok &= self_check(device)
    if not torch.cuda.is_available():
        print(f"cuda: no device visible; backends ready for CUDA tensors: {ops.available('cuda')}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
