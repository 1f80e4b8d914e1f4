"""GPU-only checks (skipped without a CUDA device): CUDA-graph capture of the fused ops with fresh noise on
every replay and seed reproducibility, no host sync, and the GPU backends against the reference at a real size."""

import pytest
import torch

from backend_cases import fused_backends
from fastddgan import Schedule, ops
from fastddgan.ops import reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def gpu_backends():
    return fused_backends("cuda") if torch.cuda.is_available() else []


@pytest.fixture
def batch():
    g = torch.Generator(device="cuda").manual_seed(0)
    x0 = torch.randn(16, 3, 32, 32, device="cuda", generator=g)
    x_t = torch.randn(16, 3, 32, 32, device="cuda", generator=g)
    t = (torch.arange(16, device="cuda") % 4)
    return x0, x_t, t


@pytest.mark.parametrize("backend", gpu_backends())
def test_graph_replay_draws_fresh_noise_and_follows_the_seed(backend, batch):
    s = Schedule.ddgan(4)
    x0, x_t, t = batch
    with ops.use_backend(backend):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up outside capture: tables cached, kernels loaded
            for _ in range(2):
                ops.posterior_sample(x0, x_t, t, s)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = ops.posterior_sample(x0, x_t, t, s)
    torch.cuda.manual_seed(11)
    graph.replay()
    first = static_out.clone()
    graph.replay()
    second = static_out.clone()
    torch.cuda.manual_seed(11)
    graph.replay()
    again = static_out.clone()
    assert not torch.allclose(first, second), "a replay must draw fresh noise"
    assert torch.equal(first, again), "the same seed must reproduce the replay"
    mean = reference.affine_noise(x0, x_t, t, s.kernel_table("posterior", torch.float32, "cuda"), None)
    z = (first - mean)[t != 0] / s.posterior_variance.sqrt().float().cuda()[t[t != 0]].view(-1, 1, 1, 1)
    assert abs(float(z.mean())) < 0.05 and abs(float(z.var()) - 1) < 0.05


@pytest.mark.parametrize("backend", gpu_backends())
def test_no_host_sync(backend, batch):
    s = Schedule.ddgan(4)
    x0, x_t, t = batch
    with ops.use_backend(backend):
        ops.posterior_sample(x0, x_t, t, s)  # first call caches the device tables
        ops.ddpm_step(x0, x_t, t, s)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(3):
                ops.posterior_sample(x0, x_t, t, s)
                ops.q_sample_pairs(x0, t, s)
                ops.ddpm_step(x0, x_t, t, s)
        finally:
            torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("backend", gpu_backends())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_large_batch_matches_reference(backend, dtype):
    s = Schedule.ddgan(4)
    shape = (64, 3, 64, 64)
    x0, x_t, noise = (torch.randn(shape, device="cuda", dtype=dtype) for _ in range(3))
    t = torch.randint(0, 4, (64,), device="cuda")
    with ops.use_backend(backend):
        got = ops.posterior_sample(x0, x_t, t, s, noise=noise)
    expect = reference.affine_noise(x0, x_t, t, s.kernel_table("posterior", torch.float32, "cuda"), noise)
    tol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}[dtype]
    torch.testing.assert_close(got, expect, rtol=tol, atol=tol)
