"""Bad input gets a ValueError/TypeError that names the argument and what was expected."""

import pytest
import torch

from fastddgan import Schedule, ops

S = Schedule.ddgan(4)
X = torch.zeros(3, 1, 4, 4)
T3 = torch.tensor([0, 1, 3])


@pytest.mark.parametrize("call,error,match", [
    (lambda: ops.posterior_sample(X, torch.zeros(3, 1, 4, 5), T3, S), ValueError, r"x_t: expected shape \(3, 1, 4, 4\)"),
    (lambda: ops.posterior_sample(X, X.double(), T3, S), TypeError, "x_t: expected dtype torch.float32"),
    (lambda: ops.posterior_sample(X, X.to("meta"), T3, S), ValueError, "x_t: expected a tensor on cpu"),
    (lambda: ops.posterior_sample(X.long(), X.long(), T3, S), TypeError, "x0: expected a floating-point tensor"),
    (lambda: ops.posterior_sample([1.0], X, T3, S), TypeError, "x0: expected a torch.Tensor"),
    (lambda: ops.posterior_sample(torch.tensor(1.0), torch.tensor(1.0), T3, S), ValueError, "x0: .*batch"),
    (lambda: ops.posterior_sample(X, X, torch.tensor([0, 1, 4]), S), ValueError, r"t: expected values in \[0, T=4\)"),
    (lambda: ops.posterior_sample(X, X, torch.tensor([-1, 1, 2]), S), ValueError, r"t: expected values in \[0, T=4\)"),
    (lambda: ops.posterior_sample(X, X, torch.tensor([0, 1]), S), ValueError, r"t: expected shape \(3,\)"),
    (lambda: ops.posterior_sample(X, X, torch.tensor([0.0, 1, 2]), S), TypeError, "t: expected an integer tensor"),
    (lambda: ops.posterior_sample(X, X, 4, S), ValueError, r"t: expected a timestep in \[0, T=4\)"),
    (lambda: ops.posterior_sample(X, X, 1.5, S), TypeError, "t: expected an int64 tensor"),
    (lambda: ops.posterior_sample(X, X, T3.to("meta"), S), ValueError, "t: expected a tensor on cpu"),
    (lambda: ops.posterior_sample(X, X, T3, "ddgan"), TypeError, "schedule: expected a fastddgan.Schedule"),
    (lambda: ops.posterior_sample(X, X, T3, S, noise=torch.zeros(3)), ValueError, "noise: expected shape"),
    (lambda: ops.posterior_sample(X, X, T3, S, generator=1), TypeError, "generator: expected a torch.Generator"),
    (lambda: ops.q_sample(X, T3, S, noise=X.half()), TypeError, "noise: expected dtype"),
    (lambda: ops.q_sample_pairs(X, T3, S, noise=X), TypeError, "noise: expected a pair"),
    (lambda: ops.ddpm_step(X, X, T3, S, variance="medium"), ValueError, r"variance: expected one of \('small', 'large'\)"),
    (lambda: ops.ddpm_step(X, X[:2], T3, S), ValueError, "x_t: expected shape .*the shape of eps"),
    (lambda: ops.set_backend("fast"), ValueError, "name: expected one of"),
    (lambda: ops.q_sample(X.to_sparse(), T3, S), TypeError, "x0: expected a dense tensor, got a sparse_coo tensor"),
    (lambda: ops.q_sample(X[:, 0, 0].to_sparse_csr(), T3, S), TypeError, "x0: expected a dense tensor, got a sparse_csr"),
    (lambda: ops.posterior_sample(X, X.to_sparse(), T3, S), TypeError, "x_t: expected a dense tensor"),
    (lambda: ops.q_sample(X, T3, S, noise=X.to_sparse()), TypeError, "noise: expected a dense tensor"),
    (lambda: ops.ddpm_step(X.to_sparse(), X, T3, S), TypeError, "eps: expected a dense tensor"),
    (lambda: ops.q_sample(X, T3.to_sparse(), S), TypeError, "t: expected a dense tensor"),
    (lambda: ops.posterior_sample(X, X, T3, S, seed=ops.seed_tensor(1).to_sparse()), TypeError,
     "seed: expected a dense tensor"),
    (lambda: ops.normal((3, 2), ops.seed_tensor(1).to_sparse()), TypeError, "seed: expected a dense tensor"),
])
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match) as err:
        call()
    assert "\n" not in str(err.value)


def test_generator_on_the_wrong_device():
    cpu_generator = torch.Generator(device="cpu")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device to build a mismatching generator")
    with pytest.raises(ValueError, match="generator: expected a generator for cuda tensors"):
        ops.posterior_sample(X.cuda(), X.cuda(), T3.cuda(), S, generator=cpu_generator)


def test_forced_backend_that_cannot_run_says_why():
    with ops.use_backend("cuda"):
        with pytest.raises(RuntimeError, match="backend 'cuda' was requested but the cuda backend runs on CUDA"):
            ops.posterior_sample(X, X, T3, S)


@pytest.mark.parametrize("device", ["meta"] + (["cuda"] if torch.cuda.is_available() else []))
def test_schedule_on_another_device_is_moved_once(device):
    """A CPU schedule serves tensors on another device: its small tables are copied there once and cached (the
    meta device runs the eager reference on shapes only; a GPU runs the kernels)."""
    s = Schedule.ddgan(4)
    x = torch.zeros(3, 2, device=device)
    out = ops.posterior_sample(x, x, T3.to(device), s)
    assert out.device.type == device and s.betas.device.type == "cpu"
    assert [key[2].type for key in s._kernel_cache] == [device]  # the posterior table, on the data's device
    table = next(iter(s._kernel_cache.values()))
    assert table.device.type == device
    ops.posterior_sample(x, x, T3.to(device), s)
    assert len(s._kernel_cache) == 1  # not copied again: the same tensor object
    assert s.kernel_table("posterior", torch.float32, device) is table


@pytest.mark.parametrize("seed,error,match", [
    (torch.tensor([1]), TypeError, r"seed: expected an int64 tensor \[key, sample_offset\] of shape \(2,\)"),
    (torch.tensor([1.0, 0.0]), TypeError, "seed: expected an int64 tensor"),
    (7, TypeError, "seed: expected an int64 tensor"),
    (torch.tensor([1, 0], device="meta"), ValueError, "seed: expected a tensor on cpu"),
])
def test_bad_seed(seed, error, match):
    with pytest.raises(error, match=match):
        ops.posterior_sample(X, X, T3, S, seed=seed)


def test_noise_and_seed_together():
    with pytest.raises(ValueError, match="seed: give either noise or seed, not both"):
        ops.posterior_sample(X, X, T3, S, noise=X, seed=ops.seed_tensor(1))
