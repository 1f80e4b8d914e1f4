"""The public ops against closed forms written here from the schedule's float64 tables, on every backend
(the eager reference included), plus the statistics of the true training pairs."""

import warnings

import pytest
import torch

from backend_cases import backend_params
from fastddgan import Schedule, ops

ALL_BACKENDS = [pytest.param("torch", "cpu", id="torch-cpu")] + backend_params()


def coef(schedule, name, t, like):
    """getattr(schedule, name)[t] in float64, shaped to broadcast against ``like``."""
    return getattr(schedule, name)[t.cpu()].to(like.device).view(-1, *[1] * (like.dim() - 1))


def data(shape, device, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype).to(device)


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
def test_q_sample_closed_form(backend, device):
    s = Schedule.linear(100)
    x0, noise = data((6, 2, 3, 5), device, 1), data((6, 2, 3, 5), device, 2)
    t = torch.tensor([0, 1, 17, 50, 98, 99], device=device)
    with ops.use_backend(backend):
        got = ops.q_sample(x0, t, s, noise=noise)
    expect = coef(s, "sqrt_alphas_cumprod", t, x0) * x0 + coef(s, "sqrt_one_minus_alphas_cumprod", t, x0) * noise
    torch.testing.assert_close(got, expect, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
def test_posterior_sample_closed_form(backend, device):
    s = Schedule.ddgan(4)
    x0, x_t, noise = (data((8, 3, 4, 4), device, k) for k in range(3))
    t = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0], device=device)
    with ops.use_backend(backend):
        got = ops.posterior_sample(x0, x_t, t, s, noise=noise)
    mean = coef(s, "posterior_mean_coef1", t, x0) * x0 + coef(s, "posterior_mean_coef2", t, x0) * x_t
    expect = mean + coef(s, "posterior_variance", t, x0).sqrt() * noise
    torch.testing.assert_close(got, expect, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
def test_posterior_at_t0_returns_x0(backend, device):
    s = Schedule.ddgan(4)
    x0, x_t = data((5, 1, 6, 6), device, 3, torch.float32), data((5, 1, 6, 6), device, 4, torch.float32)
    with ops.use_backend(backend):
        out = ops.posterior_sample(x0, x_t, torch.zeros(5, dtype=torch.long, device=device), s)
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
def test_q_sample_pairs_closed_form(backend, device):
    s = Schedule.ddgan(4)
    x0, n1, n2 = (data((4, 2, 3, 3), device, k) for k in range(3))
    t = torch.tensor([0, 1, 2, 3], device=device)
    with ops.use_backend(backend):
        x_prev, x_t = ops.q_sample_pairs(x0, t, s, noise=(n1, n2))
    ab_prev = coef(s, "alphas_cumprod_prev", t, x0)
    expect_prev = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * n1
    expect_t = coef(s, "alphas", t, x0).sqrt() * expect_prev + coef(s, "betas", t, x0).sqrt() * n2
    torch.testing.assert_close(x_prev, expect_prev, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(x_t, expect_t, rtol=1e-12, atol=1e-12)
    assert torch.equal(x_prev[0], x0[0])  # at t == 0 the "previous" sample is x0 itself


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
@pytest.mark.parametrize("variance", ["small", "large"])
@pytest.mark.parametrize("clip", [True, False])
def test_ddpm_step_closed_form(backend, device, variance, clip):
    s = Schedule.linear(50)
    eps, x_t, noise = (data((5, 3, 4, 4), device, k) for k in range(3))
    x_t = 2 * x_t  # so that clipping matters
    t = torch.tensor([0, 1, 10, 30, 49], device=device)
    with ops.use_backend(backend):
        got = ops.ddpm_step(eps, x_t, t, s, variance=variance, clip_x0=clip, noise=noise)
    ab = coef(s, "alphas_cumprod", t, x_t)
    x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
    if clip:
        x0 = x0.clamp(-1, 1)
    mean = coef(s, "posterior_mean_coef1", t, x_t) * x0 + coef(s, "posterior_mean_coef2", t, x_t) * x_t
    var = coef(s, "posterior_variance" if variance == "small" else "betas", t, x_t).clone()
    var[t.cpu() == 0] = 0  # no noise at the last step
    torch.testing.assert_close(got, mean + var.sqrt() * noise, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
def test_q_sample_pairs_statistics(backend, device):
    """Marginals N(sqrt(ab) x0, 1 - ab) of both members and their covariance sqrt(alpha_t) (1 - ab_{t-1})."""
    s = Schedule.ddgan(4)
    n, t_val, c = 20000, 2, 0.7
    x0 = torch.full((n, 4), c, device=device)
    t = torch.full((n,), t_val, device=device)
    gen = torch.Generator(device).manual_seed(0)
    with ops.use_backend(backend):
        x_prev, x_t = (v.double().cpu().flatten() for v in ops.q_sample_pairs(x0, t, s, generator=gen))
    ab, ab_prev, alpha = (float(getattr(s, k)[t_val]) for k in ("alphas_cumprod", "alphas_cumprod_prev", "alphas"))
    m = x_t.numel()
    tol = 5 / m**0.5
    assert abs(x_t.mean() - ab**0.5 * c) < tol * (1 - ab) ** 0.5
    assert abs(x_prev.mean() - ab_prev**0.5 * c) < tol * (1 - ab_prev) ** 0.5
    assert abs(x_t.var() / (1 - ab) - 1) < 5 * (2 / m) ** 0.5
    assert abs(x_prev.var() / (1 - ab_prev) - 1) < 5 * (2 / m) ** 0.5
    cov = ((x_prev - x_prev.mean()) * (x_t - x_t.mean())).mean()
    assert abs(cov - alpha**0.5 * (1 - ab_prev)) < 0.02


def test_int_timestep_and_int32_tensor_broadcast():
    s = Schedule.ddgan(4)
    x0, x_t, noise = (data((3, 5), "cpu", k) for k in range(3))
    a = ops.posterior_sample(x0, x_t, 2, s, noise=noise)
    b = ops.posterior_sample(x0, x_t, torch.tensor([2, 2, 2], dtype=torch.int32), s, noise=noise)
    c = ops.posterior_sample(x0, x_t, torch.full((3,), 2), s, noise=noise)
    assert torch.equal(a, c) and torch.equal(b, c)


def test_a_forced_backend_is_local_to_its_context():
    """use_backend and set_backend choose for the current context only (a contextvar): another thread keeps the
    automatic choice, and leaving the block restores the previous one."""
    import threading

    cpu = torch.device("cpu")
    auto = ops.select(cpu)
    seen = {}
    with ops.use_backend("torch"):
        worker = threading.Thread(target=lambda: seen.update(other=ops.select(cpu)))
        worker.start()
        worker.join()
        seen["here"] = ops.select(cpu)
        with ops.use_backend(None):
            seen["auto inside"] = ops.select(cpu)
    assert seen == {"other": ops._backends.ENVIRONMENT.name or auto, "here": "torch", "auto inside": auto}
    assert ops.select(cpu) == auto and ops.get_forced_backend() is None
    ops.set_backend("torch")  # the old switch: the rest of this context (tests/conftest.py resets it)
    assert ops.select(cpu) == "torch" and ops.get_forced_backend() == "torch"


def _both_paths(fn):
    """fn() through the direct CPU call (no grad) and through the dispatcher (an input that requires grad, which
    the direct path refuses), with torch's CPU generator at the same state for both."""
    torch.manual_seed(7)
    direct = fn(False)
    after_direct = torch.randint(0, 2**62, (1,))
    torch.manual_seed(7)
    dispatched = fn(True).detach()
    after_dispatched = torch.randint(0, 2**62, (1,))
    return direct, dispatched, torch.equal(after_direct, after_dispatched)


def test_direct_cpu_call_equals_the_dispatcher_path(monkeypatch):
    """The public functions' direct CPU call (no autograd, no tracing) draws the same key from the generator as
    draw_seed, leaves it in the same state, and gives the same bits as the call through the dispatcher."""
    if "cpp" not in ops.available("cpu"):
        pytest.skip("the cpp backend is not built")
    s, sl = Schedule.ddgan(4), Schedule.linear(100)
    x0, x_t = data((3, 2, 5), "cpu", 1, torch.float32), data((3, 2, 5), "cpu", 2, torch.float32)
    t = torch.tensor([0, 2, 3])

    def grad(x, on):
        return x.clone().requires_grad_() if on else x

    calls = [lambda g: ops.posterior_sample(grad(x0, g), x_t, t, s),
             lambda g: ops.ddpm_step(grad(x0, g), x_t, torch.tensor([1, 50, 99]), sl),
             lambda g: ops.q_sample(grad(x0, g), t, s),
             lambda g: torch.stack(ops.q_sample_pairs(grad(x0, g), t, s))]
    taken = []
    direct_cpu = ops._library.direct_cpu
    monkeypatch.setattr(ops._library, "direct_cpu", lambda *args: taken.append(1) or direct_cpu(*args))
    with ops.use_backend("cpp"):
        for fn in calls:
            taken.clear()
            direct, dispatched, same_state = _both_paths(fn)
            assert torch.equal(direct, dispatched) and same_state
            assert taken  # the direct path ran for the call without grad ...
            taken.clear()
            fn(True)
            assert not taken  # ... and not for the one with grad
        seed = ops.seed_tensor(5, 2)
        assert torch.equal(ops.normal((4, 3), seed), ops.normal((4, 3), seed.clone()))
        with torch.inference_mode():  # the per-thread seed tensor is redrawn in and out of inference mode
            direct, dispatched, same_state = _both_paths(calls[0])
            assert torch.equal(direct, dispatched) and same_state


def test_direct_cpu_call_leaves_tracing_and_modes_alone():
    """Dispatch modes (make_fx, fake tensors) and torch.jit.trace still see the op: the direct call is only taken
    where nothing above the CPU kernel has work to do."""
    from torch.utils._python_dispatch import TorchDispatchMode

    if "cpp" not in ops.available("cpu"):
        pytest.skip("the cpp backend is not built")

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    s = Schedule.ddgan(4)
    x0, x_t, noise = (data((2, 3), "cpu", k, torch.float32) for k in range(3))
    t = torch.tensor([1, 2])
    with ops.use_backend("cpp"):
        with Record() as mode:
            ops.posterior_sample(x0, x_t, t, s, noise=noise)
        assert any("fastddgan.affine_noise" in name for name in mode.names)
        with warnings.catch_warnings():  # the Python-side checks read t: constants of the trace, as intended here
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(lambda a, b, n: ops.posterior_sample(a, b, t, s, noise=n), (x0, x_t, noise))
        assert "fastddgan::affine_noise" in str(traced.graph)
        torch.testing.assert_close(traced(x_t, x0, noise), ops.posterior_sample(x_t, x0, t, s, noise=noise))
