"""GPU-only checks (skipped without a CUDA device): CUDA-graph capture of the fused ops with fresh noise on
every replay and seed reproducibility, no host sync (seeds included), the GPU backends against the reference at a
real size, on a device other than the current one, and the loss reduction over many blocks."""

import math

import pytest
import torch

from backend_cases import fused_backends
from fastddgan import Schedule, ops
from fastddgan.ops import _library, reference

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
    z = ((first - mean)[t != 0] / s.posterior_variance.sqrt().float().cuda()[t[t != 0]].view(-1, 1, 1, 1)).double()
    n = z.numel()  # 12 samples of 3 x 32 x 32: within 5 sigma of N(0, 1)'s mean and variance
    assert abs(float(z.mean())) < 5 / math.sqrt(n) and abs(float(z.var()) - 1) < 5 * math.sqrt(2 / n)


@pytest.mark.parametrize("backend", gpu_backends())
def test_no_host_sync(backend, batch):
    s = Schedule.ddgan(4)
    x0, x_t, t = batch
    with ops.use_backend(backend):
        ops.posterior_sample(x0, x_t, t, s)  # first calls cache the device tables (one per op)
        ops.q_sample_pairs(x0, t, s)
        ops.ddpm_step(x0, x_t, t, s)
        ops.normal((4, 7), ops.seed_tensor(1, 0, "cuda"))  # its (0, 0, 1) coefficient table
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(3):
                ops.posterior_sample(x0, x_t, t, s)
                ops.q_sample_pairs(x0, t, s)
                ops.ddpm_step(x0, x_t, t, s)
            seed = ops.seed_tensor(2**63 + 5, 3, "cuda")  # built in pinned memory, copied without blocking
            ops.normal((4, 7), seed)
            ops.posterior_sample(x0, x_t, t, s, seed=seed)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert seed.tolist() == [-(2**63) + 5, 3]


def test_per_step_divergence_has_no_host_sync():
    """The bound per DDGAN step, logged on every D step, stays on the device (no bincount, no .item())."""
    from fastddgan import losses

    real, fake = torch.randn(64, device="cuda"), torch.randn(64, device="cuda")
    t = torch.randint(0, 4, (64,), device="cuda")
    loss = losses.get_loss("js")
    loss.divergence_per_group(real, fake, t, 4)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        per_step = loss.divergence_per_group(real, fake, t, 4)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(per_step.cpu(), loss.divergence_per_group(real.cpu(), fake.cpu(), t.cpu(), 4))


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


@pytest.mark.parametrize("backend", gpu_backends())
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_tensors_on_another_device_than_the_current_one(backend):
    """The kernels run on the tensors' device (a device guard), not on the current one."""
    s = Schedule.ddgan(4)
    x0, x_t = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 1, 2, 3])
    seed = ops.seed_tensor(7)
    expect = ops.posterior_sample(x0, x_t, t, s, seed=seed)  # cpp on the CPU: the same Philox stream
    with torch.cuda.device(0), ops.use_backend(backend):
        got = ops.posterior_sample(x0.to("cuda:1"), x_t.to("cuda:1"), t.to("cuda:1"), s, seed=seed.to("cuda:1"))
        real, fake = torch.randn(300, device="cuda:1"), torch.randn(200, device="cuda:1")
        loss = _library.gan_loss(real, fake, 0, 0, 15.0)
    assert got.device == torch.device("cuda:1") and loss[0].device == torch.device("cuda:1")
    torch.testing.assert_close(got.cpu(), expect, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(loss[0].cpu(), _library.gan_loss(real.cpu(), fake.cpu(), 0, 0, 15.0)[0])


@pytest.mark.parametrize("backend", gpu_backends())
@pytest.mark.parametrize("n", [1, 255, 257, 70_000, 3_000_000])  # one block, several, more than the block cap
def test_loss_reduction_over_many_blocks(backend, n):
    """The fused loss of n logits over a grid of blocks (a second pass adds the blocks' sums): the float64
    reference's values and gradients, and the same bits on every call (a fixed reduction order)."""
    g = torch.Generator(device="cuda").manual_seed(n)
    real = 4 * torch.randn(n, device="cuda", generator=g, dtype=torch.float64)
    fake = 4 * torch.randn(n // 2 + 1, device="cuda", generator=g, dtype=torch.float64)

    with ops.use_backend(backend):
        for kind in (0, 1):
            got = _library.gan_loss(real, fake, kind, 0, 15.0)
            again = _library.gan_loss(real, fake, kind, 0, 15.0)
            expect = reference.gan_loss(real, fake, kind, 0, 15.0)
            assert all(torch.equal(a, b) for a, b in zip(got, again))
            for a, b in zip(got, expect):
                torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-15)  # summation order
            got32 = _library.gan_loss(real.float(), fake.float(), kind, 0, 15.0)
            torch.testing.assert_close(got32[0].double(), expect[0], rtol=1e-6, atol=1e-7)



@pytest.mark.parametrize("kind", ["ddgan", "ddpm"])
def test_fp16_training_steps_with_the_loss_scaler(kind):
    """--amp fp16 on the GPU: the loss scaler's scale lives on the device, steps stay finite and move the weights,
    and an overflowing step is skipped with the scale halved."""
    import fastddgan

    torch.manual_seed(0)
    model = fastddgan.from_preset(kind, "tiny", schedule=4 if kind == "ddgan" else 50, amp="fp16").cuda()
    x0 = torch.rand(8, 1, 28, 28, device="cuda") * 2 - 1
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        metrics = model.train_step(x0)
    assert all(bool(torch.isfinite(v)) for k, v in metrics.items() if k.startswith("loss"))  # r1: nan on a skip
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before))
    scaler = next(iter(model.grad_scalers.values()))
    assert scaler.is_enabled() and scaler._scale.device.type == "cuda"
    for s in model.grad_scalers.values():
        s.update(2.0**100)  # every fp16 gradient overflows: every step is skipped
    trained = [p for opt in fastddgan.checkpoint.optimizers(model).values() for g in opt.param_groups
               for p in g["params"]]
    weights = [p.detach().clone() for p in trained]
    model.train_step(x0)
    assert all(torch.equal(p, q) for p, q in zip(trained, weights))
    assert all(s.get_scale() == 2.0**99 for s in model.grad_scalers.values())


def test_cuda_noise_has_the_bits_of_the_cpp_noise():
    """The CUDA kernels draw the C++ kernels' normals bit for bit: the same Philox words and the same float
    Box-Muller (our own log and sincos polynomials with explicit fused multiply-adds, IEEE sqrt, no other FMA
    contraction in either build)."""
    if "cuda" not in gpu_backends():
        pytest.skip("the CUDA extension is not built")
    for key, offset, shape in [(5, 0, (3, 1000)), (-(2**63) + 7, 11, (2, 3, 5, 7))]:
        with ops.use_backend("cpp"):
            expect = ops.normal(shape, ops.seed_tensor(key, offset, "cpu"))
        with ops.use_backend("cuda"):
            got = ops.normal(shape, ops.seed_tensor(key, offset, "cuda"))
        assert torch.equal(got.cpu(), expect)


def test_memory_use_reports_the_allocators_peak_and_the_cards_memory():
    from fastddgan.train.progress import memory_use

    device = torch.device("cuda", torch.cuda.current_device())
    x = torch.empty(64 * 2**20, dtype=torch.uint8, device=device)
    peak, total = memory_use(device)
    assert 64 * 2**20 <= peak < total
    del x
