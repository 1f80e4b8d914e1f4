"""DDPM's exact maths, each against formulas written out here: the x0 / v -> eps conversions of the predictions,
``ddim_step``, and the distribution the samplers produce on a Gaussian target with the optimal denoiser (a linear
map of x_t, so the sampler's output distribution is known exactly)."""

import math

import pytest
import torch
from torch import nn

import fastddgan
from fastddgan import DDPM, Schedule
from fastddgan.ddpm import ddim_step


def pair(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1, torch.randn(shape, generator=g,
                                                                                     dtype=torch.float64)


class Oracle(nn.Module):
    """A 'network' that returns a fixed tensor (the exact target of its prediction type)."""

    def __init__(self, out):
        super().__init__()
        self.out = nn.Parameter(out, requires_grad=False)
        self.calls = []

    def forward(self, x_t, t_model, y=None):
        self.calls.append(t_model.clone())
        return self.out


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_predict_eps_recovers_the_noise_from_each_prediction_type(prediction):
    """x_t = sqrt(ab) x0 + sqrt(1 - ab) eps at respaced step i; a network that outputs the exact target (eps, x0 or
    v = sqrt(ab) eps - sqrt(1 - ab) x0, at the original step timesteps[i]) gives back eps."""
    train = Schedule.linear(100)
    sched = train.respace(10)
    x0, eps = pair((4, 3), 0)
    i = torch.tensor([0, 3, 7, 9])
    ab = sched.alphas_cumprod[i].unsqueeze(1)
    assert torch.equal(ab, train.alphas_cumprod[sched.timesteps[i]].unsqueeze(1))  # respacing keeps ab
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    target = {"eps": eps, "x0": x0, "v": ab.sqrt() * eps - (1 - ab).sqrt() * x0}[prediction]
    net = Oracle(target)
    model = DDPM(Oracle(target), train, prediction=prediction, sample_shape=(3,), clip_x0=False)
    got = model.predict_eps(net, x_t, i, sched.timesteps[i], sched)
    assert torch.equal(net.calls[0], sched.timesteps[i])  # the network sees the original step
    # the conversion reads float32 coefficient tables; eps is recovered to float32 precision over the error
    # amplification 1 / sqrt(1 - ab) (x0) or 1 (v)
    tol = 1e-6 / float((1 - ab).sqrt().min()) if prediction == "x0" else 1e-6
    torch.testing.assert_close(got, eps, rtol=0, atol=tol)


def test_training_targets_are_the_stated_ones():
    """L_simple regresses eps, x0 or v = sqrt(ab) eps - sqrt(1 - ab) x0 of the drawn (t, eps): with the network
    returning that target the loss is 0 up to rounding, and the mean squared error of anything else."""
    train = Schedule.linear(50)
    x0 = pair((6, 2), 1)[0].float()
    for prediction in ("eps", "x0", "v"):
        g = torch.Generator().manual_seed(3)
        t = torch.randint(0, train.T, (6,), generator=g)  # what loss() draws from the same generator, in order
        eps = torch.randn(x0.shape, generator=g)
        ab = train.alphas_cumprod[t].unsqueeze(1).float()
        target = {"eps": eps, "x0": x0, "v": ab.sqrt() * eps - (1 - ab).sqrt() * x0}[prediction]
        for out, expect in ((target, 0.0), (target + 0.5, 0.25)):
            model = DDPM(Oracle(out), train, prediction=prediction, sample_shape=(2,), clip_x0=False)
            loss = model.loss(x0, generator=torch.Generator().manual_seed(3))
            assert float(loss) == pytest.approx(expect, abs=1e-6), prediction


def ddim_reference(eps, x_t, i, schedule, clip_x0):
    """DDIM (eta = 0) element by element in Python floats: x0 = (x_t - sqrt(1 - a) e) / sqrt(a), clipped to [-1, 1]
    with e recomputed from the clipped x0, then x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev) e."""
    a, a_prev = float(schedule.alphas_cumprod[i]), float(schedule.alphas_cumprod_prev[i])
    out = []
    for e, x in zip(eps.flatten().tolist(), x_t.flatten().tolist()):
        x0 = (x - math.sqrt(1 - a) * e) / math.sqrt(a)
        if clip_x0 and not -1 <= x0 <= 1:
            x0 = max(-1.0, min(1.0, x0))
            e = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
        out.append(math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * e)
    return torch.tensor(out, dtype=torch.float64).view(x_t.shape)


@pytest.mark.parametrize("clip_x0", [False, True])
def test_ddim_step_matches_the_hand_written_update(clip_x0):
    sched = Schedule.linear(1000).respace(20)
    g = torch.Generator().manual_seed(0)
    eps, x_t = torch.randn(5, 7, generator=g, dtype=torch.float64), 2 * torch.randn(5, 7, generator=g,
                                                                                     dtype=torch.float64)
    clipped = 0
    for i in (0, 1, 10, 19):
        got = ddim_step(eps, x_t, i, sched, clip_x0)
        torch.testing.assert_close(got, ddim_reference(eps, x_t, i, sched, clip_x0), rtol=1e-12, atol=1e-12)
        a = float(sched.alphas_cumprod[i])
        clipped += int((((x_t - (1 - a) ** 0.5 * eps) / a**0.5).abs() > 1).sum())
    assert clipped > 10  # the clipping branch is exercised


def test_ddim_step_with_the_true_noise_moves_along_the_pair():
    """Deterministic DDIM maps x_t = sqrt(a) x0 + sqrt(1 - a) eps to sqrt(a_prev) x0 + sqrt(1 - a_prev) eps when
    given the true eps (x0 in [-1, 1]: no clipping), and to x0 itself at the last step."""
    sched = Schedule.cosine(100).respace(8)
    x0, eps = pair((3, 4), 2)
    for i in range(sched.T):
        a, a_prev = float(sched.alphas_cumprod[i]), float(sched.alphas_cumprod_prev[i])
        x_t = a**0.5 * x0 + (1 - a) ** 0.5 * eps
        expect = x0 if i == 0 else a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * eps
        torch.testing.assert_close(ddim_step(eps, x_t, i, sched, True), expect, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------- samplers
MU = torch.tensor([0.7, -1.2], dtype=torch.float64)
VAR = torch.tensor([0.25, 1.5], dtype=torch.float64)


class GaussianOptimum(nn.Module):
    """The exact posterior mean of each prediction type for data x0 ~ N(MU, diag(VAR)), at the training
    schedule's step t_model: with x_t = sqrt(a) x0 + sqrt(1 - a) eps,
        E[x0 | x_t]  = MU + sqrt(a) VAR (x_t - sqrt(a) MU) / (a VAR + 1 - a),
        E[eps | x_t] = sqrt(1 - a) (x_t - sqrt(a) MU) / (a VAR + 1 - a),
        E[v | x_t]   = sqrt(a) E[eps | x_t] - sqrt(1 - a) E[x0 | x_t]."""

    def __init__(self, schedule, prediction):
        super().__init__()
        self.ab = nn.Parameter(schedule.alphas_cumprod.clone(), requires_grad=False)
        self.prediction = prediction

    def forward(self, x_t, t_model, y=None):
        a = self.ab[t_model].unsqueeze(1)
        centred = (x_t.double() - a.sqrt() * MU) / (a * VAR + 1 - a)
        eps = (1 - a).sqrt() * centred
        x0 = MU + a.sqrt() * VAR * centred
        out = {"eps": eps, "x0": x0, "v": a.sqrt() * eps - (1 - a).sqrt() * x0}[self.prediction]
        return out.to(x_t.dtype)


def exact_output(sched, ddim, variance):
    """Mean and variance of the sampler's output, per coordinate: every step is x_prev = k x_t + c + s z with
    x0_hat = E[x0 | x_t] linear in x_t, so the moments of x_T ~ N(0, 1) propagate exactly:
        ancestral  x_prev = c1 x0_hat + c2 x_t + sigma z,  c1 = sqrt(ab_prev) beta / (1 - ab),
                   c2 = sqrt(alpha) (1 - ab_prev) / (1 - ab), sigma^2 = beta (1 - ab_prev) / (1 - ab) ("small")
                   or beta ("large"; none at the last step);
        DDIM       x_prev = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev) (x_t - sqrt(ab) x0_hat) / sqrt(1 - ab)."""
    mean, var = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    for i in reversed(range(sched.T)):
        beta = float(sched.betas[i])
        ab = float(torch.prod(1 - sched.betas[:i + 1]))
        ab_prev = ab / (1 - beta)
        gain = math.sqrt(ab) * VAR / (ab * VAR + 1 - ab)  # x0_hat = gain x_t + offset
        offset = MU - gain * math.sqrt(ab) * MU
        if ddim:
            k_e = math.sqrt(1 - ab_prev) / math.sqrt(1 - ab)
            k = math.sqrt(ab_prev) * gain + k_e * (1 - math.sqrt(ab) * gain)
            c = math.sqrt(ab_prev) * offset - k_e * math.sqrt(ab) * offset
            sigma2 = 0.0
        else:
            c1 = math.sqrt(ab_prev) * beta / (1 - ab)
            c2 = math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab)
            k, c = c1 * gain + c2, c1 * offset
            sigma2 = beta * (1 - ab_prev) / (1 - ab) if variance == "small" else (beta if i > 0 else 0.0)
        mean, var = k * mean + c, k * k * var + sigma2
    return mean, var


@pytest.mark.parametrize("prediction,steps,ddim,variance", [
    ("eps", 1000, False, "small"), ("x0", 20, False, "small"), ("v", 20, False, "large"), ("eps", 10, True, "small"),
    ("v", 5, True, "small"),
])
def test_sampler_output_distribution_on_a_gaussian_target(prediction, steps, ddim, variance):
    """fastddgan.sample with the optimal denoiser of a 2-D Gaussian: the samples' mean and variance equal the
    exact moments of the sampler (within 5 sigma of n samples), and those are close to the target's when the
    steps are many."""
    train = Schedule.linear(1000)
    model = DDPM(GaussianOptimum(train, prediction), train, prediction=prediction, sample_shape=(2,),
                 clip_x0=False, p_uncond=0.0)
    n = 40000
    x = fastddgan.sample(model, T=steps, n=n, seed=11, ddim=ddim, variance=variance).double()
    sched = train.respace(steps) if steps < train.T else train
    mean, var = exact_output(sched, ddim, variance)
    assert ((x.mean(0) - mean).abs() < 5 * (var / n).sqrt()).all(), (x.mean(0), mean)
    assert ((x.var(0) / var - 1).abs() < 5 * math.sqrt(2 / n)).all(), (x.var(0), var)
    if steps == train.T and not ddim:  # the full ancestral chain reproduces the data distribution closely
        torch.testing.assert_close(mean, MU, rtol=0, atol=0.02)
        torch.testing.assert_close(var, VAR, rtol=0.05, atol=0)
