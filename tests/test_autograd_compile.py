"""Gradients through the fused posterior draw, the op registration (opcheck) and torch.compile."""

import pytest
import torch

from backend_cases import backend_params
from fastddgan import Schedule, ops
from fastddgan.ops import _library

ALL_BACKENDS = [pytest.param("torch", "cpu", id="torch-cpu")] + backend_params()


def inputs(device, dtype=torch.float64, shape=(4, 2, 3, 3)):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(shape, generator=g, dtype=dtype).to(device).requires_grad_() for _ in range(2)]


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
@pytest.mark.parametrize("explicit_noise", [True, False])
def test_gradcheck_posterior_sample(backend, device, explicit_noise):
    s = Schedule.ddgan(4)
    x0, x_t = inputs(device)
    t = torch.tensor([0, 1, 2, 3], device=device)
    noise = torch.randn(x0.shape, dtype=torch.float64, device=device) if explicit_noise else None

    def fn(a, b):  # a fixed generator seed makes the in-kernel noise a constant of the function
        gen = torch.Generator(device=device).manual_seed(1)
        return ops.posterior_sample(a, b, t, s, noise=noise, generator=gen)

    with ops.use_backend(backend):
        assert torch.autograd.gradcheck(fn, (x0, x_t))


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
def test_gradients_are_the_posterior_coefficients(backend, device):
    s = Schedule.ddgan(4)
    x0, x_t = inputs(device, torch.float32)
    t = torch.tensor([3, 2, 1, 0], device=device)
    with ops.use_backend(backend):
        ops.posterior_sample(x0, x_t, t, s).sum().backward()
    c1 = s.posterior_mean_coef1.float()[t.cpu()].to(device).view(-1, 1, 1, 1).expand_as(x0)
    c2 = s.posterior_mean_coef2.float()[t.cpu()].to(device).view(-1, 1, 1, 1).expand_as(x0)
    torch.testing.assert_close(x0.grad, c1)
    torch.testing.assert_close(x_t.grad, c2)


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
@pytest.mark.parametrize("clip", [True, False])
def test_gradcheck_ddpm_step(backend, device, clip):
    """ddpm_step is differentiable on every backend (the fused ones through the op's autograd formula), with the
    eager reference's gradients: a clipped x0 passes none."""
    s = Schedule.linear(10)
    eps, x_t = inputs(device, shape=(4, 2, 3))
    noise = torch.randn(eps.shape, dtype=torch.float64, device=device).requires_grad_()
    with torch.no_grad():
        eps.mul_(0.3)  # some x0 inside [-1, 1], some outside (clipped)
    t = torch.tensor([0, 3, 6, 9], device=device)
    with ops.use_backend(backend):
        assert torch.autograd.gradcheck(lambda e, x, n: ops.ddpm_step(e, x, t, s, noise=n, clip_x0=clip),
                                        (eps, x_t, noise))
        out = ops.ddpm_step(eps, x_t, t, s, clip_x0=clip, generator=torch.Generator(device).manual_seed(0))
        grads = torch.autograd.grad(out.sum(), (eps, x_t))
    with ops.use_backend("torch"):
        expect = torch.autograd.grad(ops.ddpm_step(eps, x_t, t, s, noise=torch.zeros_like(eps), clip_x0=clip).sum(),
                                     (eps, x_t))
    for got, want in zip(grads, expect):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
def test_opcheck(backend, device):
    s = Schedule.ddgan(4)
    a, b = (x.detach().float() for x in inputs(device))
    t = torch.tensor([0, 1, 2, 3], device=device)
    seed = ops.seed_tensor(42, 0, device)
    noise = torch.randn_like(a)
    table = s.kernel_table("posterior", torch.float32, device)
    ddpm_table = Schedule.linear(10).kernel_table("ddpm_small", torch.float32, device)
    with ops.use_backend(backend):
        for args in [(a, b, t, table, None, seed), (a.requires_grad_(), b, t, table, noise, None),
                     (a.detach(), None, t, table, noise.requires_grad_(), None)]:
            torch.library.opcheck(_library.affine_noise, args)
        torch.library.opcheck(_library.ddpm_step, (a.detach(), b, t, ddpm_table, None, seed, True))
        torch.library.opcheck(_library.ddpm_step, (a.detach().requires_grad_(), b, t, ddpm_table, noise.detach(),
                                                   None, False))
        # channels_last inputs: the outputs are contiguous, as the ops declare
        a4, b4 = (torch.randn(4, 3, 2, 2, device=device).to(memory_format=torch.channels_last) for _ in range(2))
        torch.library.opcheck(_library.affine_noise, (a4, b4, t, table, torch.randn_like(a4), None))
        torch.library.opcheck(_library.ddpm_step, (a4, b4, t, ddpm_table, None, seed, True))


def test_compile_fullgraph_cpu():
    """The fused ops trace into one graph (fake kernels, no graph break) and give the eager results."""
    s = Schedule.ddgan(4)
    x0, x_t = (x.detach().float() for x in inputs("cpu"))
    t = torch.tensor([0, 1, 2, 3])
    eps = torch.randn_like(x0)
    ddpm = Schedule.linear(10)

    def step(x0, x_t, t, eps):
        x_prev, x_next = ops.q_sample_pairs(x0, t, s)
        return ops.posterior_sample(x0, x_t, t, s) + x_prev + x_next + ops.ddpm_step(eps, x_t, t, ddpm)

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True)
    torch.manual_seed(3)
    got = compiled(x0, x_t, t, eps)
    torch.manual_seed(3)
    expect = step(x0, x_t, t, eps)
    torch.testing.assert_close(got, expect)


@pytest.mark.parametrize("backend", ["torch", "cpp", "triton"])
def test_out_of_range_t_is_an_error_under_compile(backend):
    """Compiled graphs skip the Python-side check of t; the ops check CPU t themselves, so an out-of-range t is the
    same one-line ValueError as in eager mode, not clamped (cpp, triton) or read out of bounds (torch)."""
    if backend not in ops.available("cpu"):
        pytest.skip(f"{backend} cannot run on CPU here")
    s, ddpm = Schedule.ddgan(4), Schedule.linear(10)
    x = torch.randn(2, 3)

    def step(x, t):
        return ops.posterior_sample(x, x, t, s) + ops.ddpm_step(x, x, t, ddpm) + ops.q_sample_pairs(x, t, s)[1]

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    with ops.use_backend(backend):
        assert compiled(x, torch.tensor([0, 3])).shape == (2, 3)
        for t, values in [([0, 4], "from 0 to 4"), ([-1, 2], "from -1 to 2")]:
            with pytest.raises(ValueError, match=rf"^t: expected values in \[0, T=4\), got values {values}$"):
                compiled(x, torch.tensor(t))


def test_out_of_range_t_is_an_error_under_inductor():
    """The same through inductor's generated code (one compilation, a few seconds on CPU)."""
    s = Schedule.ddgan(4)
    torch._dynamo.reset()
    compiled = torch.compile(lambda x, t: ops.posterior_sample(x, 2 * x, t, s, noise=x) + 1, fullgraph=True)
    x = torch.randn(2, 3)
    assert compiled(x, torch.tensor([0, 3])).shape == (2, 3)
    with pytest.raises(ValueError, match=r"t: expected values in \[0, T=4\), got values from 0 to 9"):
        compiled(x, torch.tensor([9, 0]))


def test_compile_fullgraph_in_a_fresh_process():
    """Backends are loaded at import, so the very first call of an op may happen inside a torch.compile trace."""
    import subprocess
    import sys

    code = ("import torch, fastddgan\n"
            "from fastddgan import ops\n"
            "s = fastddgan.Schedule.ddgan(4)\n"
            "f = torch.compile(lambda a, b, t: ops.posterior_sample(a, b, t, s), fullgraph=True)\n"
            "x = torch.zeros(2, 3)\n"
            "print(f(x, x, torch.tensor([0, 1])).shape)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "torch.Size([2, 3])" in out.stdout


def test_the_ops_export_into_a_program():
    """torch.export keeps a registered op as one node of the program (the dispatcher's op, runnable without this
    Python code by the C++ kernels), and the exported program gives the eager results."""
    table = Schedule.ddgan(4).kernel_table("posterior", torch.float32, "cpu")

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", table)

        def forward(self, a, b, t, noise):
            return torch.ops.fastddgan.affine_noise(a, b, t, self.table, noise, None) * 2

    g = torch.Generator().manual_seed(0)
    args = (torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g), torch.tensor([0, 3]),
            torch.randn(2, 3, generator=g))
    program = torch.export.export(Step(), args)
    assert [n.target for n in program.graph.nodes if n.op == "call_function"][0] is \
        torch.ops.fastddgan.affine_noise.default
    torch.testing.assert_close(program.module()(*args), Step()(*args))
