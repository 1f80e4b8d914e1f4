"""Schedules against tables computed here, independently, from the papers' formulas (numpy float64)."""

import math

import numpy as np
import pytest
import torch

from fastddgan import Schedule


def posterior_tables(betas):
    alphas = 1.0 - betas
    ab = np.cumprod(alphas)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    return {
        "alphas": alphas,
        "alphas_cumprod": ab,
        "alphas_cumprod_prev": ab_prev,
        "sqrt_alphas_cumprod": np.sqrt(ab),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ab),
        "posterior_variance": betas * (1.0 - ab_prev) / (1.0 - ab),
        "posterior_mean_coef1": betas * np.sqrt(ab_prev) / (1.0 - ab),
        "posterior_mean_coef2": (1.0 - ab_prev) * np.sqrt(alphas) / (1.0 - ab),
    }


def assert_tables(schedule, betas):
    np.testing.assert_allclose(schedule.betas.numpy(), betas, rtol=1e-10, atol=0)
    for name, expected in posterior_tables(betas).items():
        got = getattr(schedule, name)
        assert got.dtype == torch.float64 and got.shape == (len(betas),), name
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-15, err_msg=name)


def test_linear_ddpm():
    s = Schedule.linear(1000)
    assert_tables(s, np.linspace(1e-4, 0.02, 1000))
    assert s.T == len(s) == 1000
    assert s.alphas_cumprod[-1] < 1e-4  # x_T is almost pure noise


def test_cosine():
    T, off = 100, 0.008
    f = np.cos((np.arange(T + 1) / T + off) / (1 + off) * math.pi / 2) ** 2
    assert_tables(Schedule.cosine(T), np.minimum(1 - f[1:] / f[:-1], 0.999))


@pytest.mark.parametrize("T, power", [(4, 1.5), (10, 1.5), (5, 2.0), (3, 0.5)])
def test_cosine_power(T, power):
    """f(u) = cos^2((u^power + s) / (1 + s) pi / 2); power 1 is the paper's schedule; a larger power leaves less noise
    at the last reverse steps (sigma_1 = sqrt(1 / alpha_bar_1 - 1), in data units) and x_T still all but pure noise."""
    off = 0.008
    f = np.cos(((np.arange(T + 1) / T) ** power + off) / (1 + off) * math.pi / 2) ** 2
    s = Schedule.cosine(T, power=power)
    assert_tables(s, np.minimum(1 - f[1:] / f[:-1], 0.999))
    assert s.name == f"cosine{T}-p{power:g}" and Schedule.cosine(T, power=1.0).name == f"cosine{T}"

    def sigma_1(schedule):
        return float((1 / schedule.alphas_cumprod[0] - 1).sqrt())

    assert (sigma_1(s) < sigma_1(Schedule.cosine(T))) == (power > 1)
    assert s.alphas_cumprod[-1] < 1e-3


def test_cosine_power_at_t4_in_data_units():
    """x_1's noise at T = 4: 0.43 with the paper's power 1, 0.30 with the 2-D DDGAN default 1.25, 0.21 with 1.5."""
    sigmas = lambda s: (1 / s.alphas_cumprod - 1).sqrt().numpy()  # noqa: E731
    np.testing.assert_allclose(sigmas(Schedule.cosine(4)), [0.425, 1.012, 2.435, 83.25], rtol=2e-3)
    np.testing.assert_allclose(sigmas(Schedule.cosine(4, power=1.25)), [0.296, 0.788, 1.965, 69.72], rtol=2e-3)
    np.testing.assert_allclose(sigmas(Schedule.cosine(4, power=1.5)), [0.210, 0.632, 1.645, 60.87], rtol=2e-3)


@pytest.mark.parametrize("power", [0, -1, float("nan"), float("inf"), "2"])
def test_cosine_power_rejects_bad_values(power):
    with pytest.raises(ValueError, match="power: expected a finite number > 0"):
        Schedule.cosine(4, power=power)


@pytest.mark.parametrize("T", [1, 2, 4, 8])
def test_ddgan(T):
    beta_min, beta_max = 0.1, 20.0
    s_i = np.arange(T + 1) / T * (1 - 1e-3) + 1e-3
    alpha_bar = np.exp(-0.5 * s_i**2 * (beta_max - beta_min) - s_i * beta_min)
    assert_tables(Schedule.ddgan(T), 1 - alpha_bar[1:] / alpha_bar[:-1])


def test_ddgan_t4_published_values():
    """The T = 4 numbers quoted in the DDGAN reference (shared/REFERENCE.md), to 4 decimals."""
    s = Schedule.ddgan(4)
    expect = {
        "sqrt_alphas_cumprod": [0.7223, 0.2805, 0.0586, 0.00657],
        "posterior_mean_coef1": [1, 0.6658, 0.2692, 0.0578],
        "posterior_mean_coef2": [0, 0.2016, 0.1930, 0.1119],
    }
    for name, values in expect.items():
        np.testing.assert_allclose(getattr(s, name).numpy(), values, atol=6e-5, err_msg=name)
    np.testing.assert_allclose(s.posterior_variance.sqrt().numpy(), [0, 0.6639, 0.9403, 0.9920], atol=6e-5)


@pytest.mark.parametrize("schedule", [Schedule.linear(1000), Schedule.cosine(50), Schedule.ddgan(1),
                                      Schedule.ddgan(4), Schedule.linear(1000).respace(50)], ids=str)
def test_last_step_returns_clean_sample(schedule):
    assert schedule.posterior_variance[0] == 0
    assert schedule.posterior_mean_coef1[0] == pytest.approx(1.0, abs=1e-12)
    assert schedule.posterior_mean_coef2[0] == 0
    assert schedule.alphas_cumprod_prev[0] == 1


def test_log_variance_clipped():
    s = Schedule.linear(10)
    pv = s.posterior_variance.numpy()
    np.testing.assert_allclose(s.posterior_log_variance_clipped.numpy(), np.log(np.r_[pv[1], pv[1:]]))
    assert torch.isfinite(Schedule.ddgan(1).posterior_log_variance_clipped).all()


@pytest.mark.parametrize("k", [1, 3, 50, 300, 1000])
def test_respace_keeps_alpha_bar(k):
    base = Schedule.linear(1000)
    s = base.respace(k)
    assert s.T == k and s.timesteps.shape == (k,) and s.timesteps.dtype == torch.long
    assert int(s.timesteps[-1]) == 999  # always keeps the noisiest step
    if k > 1:
        assert int(s.timesteps[0]) == 0
    assert (s.timesteps[1:] > s.timesteps[:-1]).all()
    np.testing.assert_allclose(s.alphas_cumprod.numpy(), base.alphas_cumprod[s.timesteps].numpy(), rtol=1e-10)
    ab = s.alphas_cumprod.numpy()
    assert_tables(s, 1 - ab / np.r_[1.0, ab[:-1]])


def test_respace_full_is_identity():
    base = Schedule.linear(100)
    np.testing.assert_allclose(base.respace(100).betas.numpy(), base.betas.numpy(), rtol=1e-12)
    assert torch.equal(base.respace(100).timesteps, torch.arange(100))


def test_to_moves_every_table():
    s = Schedule.ddgan(4).to("meta")
    assert s.device.type == "meta"
    assert all(v.device.type == "meta" for v in s.tables().values())
    assert s.timesteps.device.type == "meta"
    cpu = Schedule.ddgan(4)
    assert cpu.to("cpu") is cpu


def test_kernel_table_is_cached_and_typed():
    s = Schedule.ddgan(4)
    a = s.kernel_table("posterior", torch.float32, "cpu")
    assert a is s.kernel_table("posterior", torch.float32, torch.device("cpu"))
    assert a.shape == (3, 4) and a.dtype == torch.float32
    np.testing.assert_allclose(a[2].numpy(), s.posterior_variance.sqrt().numpy(), rtol=1e-6)
    assert s.kernel_table("ddpm_large", torch.float64, "cpu").shape == (5, 4)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_bad_T(bad):
    with pytest.raises(ValueError, match="T: expected an integer >= 1"):
        Schedule.ddgan(bad)
    with pytest.raises(ValueError, match="T: expected"):
        Schedule.linear(bad)


def test_bad_respace_and_betas():
    with pytest.raises(ValueError, match=r"k: expected an integer in \[1, T=10\], got 11"):
        Schedule.linear(10).respace(11)
    with pytest.raises(ValueError, match="k: expected"):
        Schedule.linear(10).respace(0)
    with pytest.raises(ValueError, match="betas"):
        Schedule.from_betas([0.1, 1.5])
    with pytest.raises(ValueError, match="beta_min, beta_max"):
        Schedule.ddgan(4, beta_min=5.0, beta_max=1.0)
