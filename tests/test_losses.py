"""The five objectives (fastddgan.losses): closed forms vs the naive f-GAN expressions, numerical safety, the
divergence bound at the optimal critic vs the true divergence, the fused loss op on every backend (values and
gradients against the f-GAN table evaluated at 50 digits, opcheck, compile), R1 and the gradient penalty on a linear
discriminator, bad input."""

import functools
import math

import mpmath
import pytest
import torch

from backend_cases import backend_params
from fastddgan import losses, ops
from fastddgan.ops import _library

ALL_BACKENDS = [pytest.param("torch", "cpu", id="torch-cpu")] + backend_params()
F_GANS = ("js", "hellinger", "rkl", "tv")
NAMES = F_GANS + ("wasserstein",)


def fgan_table(m):
    """The f-GAN table written out independently of the package, for the math functions of ``m`` (torch or
    mpmath): output activation g_f and conjugate f*, evaluated naively (log(1 - exp(t)) and all)."""
    return {
        "js": (lambda v: -m.log1p(m.exp(-v)), lambda t: -m.log(1 - m.exp(t))),
        "hellinger": (lambda v: 1 - m.exp(-v), lambda t: t / (1 - t)),
        "rkl": (lambda v: -m.exp(-v), lambda t: -1 - m.log(-t)),
        "tv": (lambda v: m.tanh(v) / 2, lambda t: t),
        "wasserstein": (lambda v: v, lambda t: t),
    }


NAIVE = fgan_table(torch)
EXACT = fgan_table(mpmath)  # at 50 significant digits: no cancellation matters
# discriminator loss = DROPPED_D - bound; generator losses = -E g(V_f) + DROPPED_NS, -E f*(g(V_f)) + DROPPED_SAT
DROPPED_D = {"js": 0.0, "hellinger": 2.0, "rkl": 1.0, "tv": 0.0, "wasserstein": 0.0}
DROPPED_NS = {"js": 0.0, "hellinger": 1.0, "rkl": 0.0, "tv": 0.0, "wasserstein": 0.0}
DROPPED_SAT = {"js": 0.0, "hellinger": -1.0, "rkl": -1.0, "tv": 0.0, "wasserstein": 0.0}


def naive_bound(name, real, fake):
    g, f_star = NAIVE[name]
    return g(real).mean() - f_star(g(fake)).mean()


def logits(n, dtype=torch.float64, scale=3.0, seed=0, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, generator=gen, dtype=torch.float64)).to(dtype).to(device)


def no_clamp(name, **options):
    return losses.get_loss(name, **({} if name == "wasserstein" else {"clamp": 0.0}), **options)


# ------------------------------------------------------------------------------------------------ registry


def test_registry_and_attributes():
    assert list(losses.LOSSES) == ["js", "hellinger", "rkl", "tv", "wasserstein"]
    assert losses.get_loss().name == "js" and losses.DEFAULT_LOSS == "js"
    for name in NAMES:
        loss = losses.get_loss(name)
        assert loss.name == name and loss.generator_form in ("non_saturating", "saturating")
        assert loss.needs_gradient_penalty == (name == "wasserstein")
        for method in ("discriminator", "generator", "divergence"):
            assert callable(getattr(loss, method))
    w = losses.get_loss("wasserstein", gp_lambda=0.5, n_critic=3)
    assert (w.gp_lambda, w.n_critic) == (0.5, 3)
    assert losses.get_loss("hellinger", generator_form="non_saturating").generator_form == "non_saturating"
    assert losses.get_loss("js").n_critic == 1
    loss = losses.get_loss("rkl")
    assert losses.get_loss(loss) is loss


def test_measured_generator_defaults():
    forms = {name: losses.get_loss(name).generator_form for name in F_GANS}
    assert forms == {"js": "non_saturating", "hellinger": "saturating", "rkl": "saturating", "tv": "non_saturating"}
    w = losses.get_loss("wasserstein")
    assert (w.gp_lambda, w.n_critic) == (losses.DEFAULT_GP_LAMBDA, losses.DEFAULT_N_CRITIC) == (1.0, 1)
    assert {name: losses.get_loss(name).drift for name in F_GANS} == {"js": 0.0, "hellinger": 0.0, "rkl": 0.0,
                                                                       "tv": 0.1}
    assert losses.get_loss("tv", drift=0.0).drift == 0.0


# ------------------------------------------------------------------------------------------------ closed forms


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_closed_form_equals_naive_fgan_expression(name, fused):
    """float64: divergence == E g(V_r) - E f*(g(V_f)); D loss == const - that; both generator forms; gradients."""
    loss_ns = no_clamp(name, generator_form="non_saturating", fused=fused)
    loss_sat = no_clamp(name, generator_form="saturating", fused=fused)
    real = logits(33, seed=1).requires_grad_()
    fake = logits(17, seed=2).requires_grad_()
    bound = naive_bound(name, real, fake)
    g, f_star = NAIVE[name]
    checks = [
        (loss_ns.divergence(real, fake), bound),
        (loss_ns.discriminator(real, fake), DROPPED_D[name] - bound),
        (loss_ns.generator(fake), -g(fake).mean() + DROPPED_NS[name]),
        (loss_sat.generator(fake), -f_star(g(fake)).mean() + DROPPED_SAT[name]),
    ]
    for got, expect in checks:
        assert got.dtype == torch.float64
        torch.testing.assert_close(got, expect, rtol=1e-10, atol=1e-10)
        got_grads = torch.autograd.grad(got, (real, fake), allow_unused=True, materialize_grads=True)
        expect_grads = torch.autograd.grad(expect, (real, fake), allow_unused=True, materialize_grads=True,
                                           retain_graph=True)
        for a, b in zip(got_grads, expect_grads):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["hellinger", "rkl"])
def test_soft_clamp_is_the_activation_of_the_clamped_logit(name):
    """With clamp c the exp-based losses are the unclamped ones at c tanh(V / c): exact f-GAN objectives still."""
    real, fake = logits(20, scale=30.0, seed=3), logits(20, scale=30.0, seed=4)
    c = 15.0
    clamped = losses.get_loss(name, clamp=c)
    assert clamped.clamp == losses.DEFAULT_CLAMP == c
    plain = losses.get_loss(name, clamp=0.0)
    soft = lambda v: c * torch.tanh(v / c)  # noqa: E731
    for form in ("non_saturating", "saturating"):
        clamped.generator_form = plain.generator_form = form
        torch.testing.assert_close(clamped.generator(fake), plain.generator(soft(fake)))
    torch.testing.assert_close(clamped.discriminator(real, fake), plain.discriminator(soft(real), soft(fake)))
    torch.testing.assert_close(clamped.divergence(real, fake), naive_bound(name, soft(real), soft(fake)))


@pytest.mark.parametrize("name", ["js", "tv", "wasserstein"])
def test_bounded_losses_ignore_the_clamp(name):
    real, fake = logits(20, scale=30.0, seed=3), logits(20, scale=30.0, seed=4)
    torch.testing.assert_close(losses.get_loss(name).discriminator(real, fake),
                               no_clamp(name).discriminator(real, fake))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_finite_for_extreme_logits(name, dtype, fused):
    """|V| up to 80 in float32 / bfloat16: every loss and every gradient finite, in both generator forms."""
    values = torch.linspace(-80, 80, 41, dtype=dtype)
    for form in ("non_saturating", "saturating"):
        loss = losses.get_loss(name, generator_form=form, fused=fused)
        real, fake = values.clone().requires_grad_(), values.flip(0).clone().requires_grad_()
        total = loss.discriminator(real, fake) + loss.generator(fake) + loss.divergence(real, fake)
        total.backward()
        assert torch.isfinite(total) and torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
        assert real.grad.dtype == dtype


def test_orientation_v_larger_on_real_lowers_the_discriminator_loss():
    for name in NAMES:
        loss = losses.get_loss(name)
        high, low = torch.full((8,), 2.0), torch.full((8,), -2.0)
        assert loss.discriminator(high, low) < loss.discriminator(low, high), name
        assert loss.divergence(high, low) > loss.divergence(low, high), name
        assert loss.generator(high) < loss.generator(low), name  # G wants its samples to look real


# ------------------------------------------------------------------------------------------------ optimal critic

P = (0.0, 1.5)  # data: N(0, 1.5^2) (the heavier tails: the importance ratios stay bounded on samples)
Q = (1.0, 1.0)  # model: N(1, 1)


def _log_normal(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)


def _grid():
    x = torch.linspace(-14.0, 16.0, 300001, dtype=torch.float64)
    return x, _log_normal(x, *P).exp(), _log_normal(x, *Q).exp()


def true_divergence(name):
    """The divergence each objective's bound is tight for, by numerical integration (closed forms checked too)."""
    x, p, q = _grid()
    if name == "js":  # 2 JSD - log 4
        m = (p + q) / 2
        jsd = 0.5 * torch.trapezoid(p * torch.log(p / m), x) + 0.5 * torch.trapezoid(q * torch.log(q / m), x)
        return float(2 * jsd - math.log(4))
    if name == "hellinger":  # int (sqrt p - sqrt q)^2 = 2 (1 - Bhattacharyya coefficient)
        value = float(torch.trapezoid((p.sqrt() - q.sqrt()) ** 2, x))
        (m1, s1), (m2, s2) = P, Q
        bc = math.sqrt(2 * s1 * s2 / (s1**2 + s2**2)) * math.exp(-((m1 - m2) ** 2) / (4 * (s1**2 + s2**2)))
        assert value == pytest.approx(2 * (1 - bc), rel=1e-8)
        return value
    if name == "rkl":  # KL(Q || P)
        value = float(torch.trapezoid(q * (torch.log(q) - torch.log(p)), x))
        (mp, sp), (mq, sq) = P, Q
        assert value == pytest.approx(math.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5, rel=1e-8)
        return value
    if name == "tv":
        return float(0.5 * torch.trapezoid((p - q).abs(), x))
    # W1 in 1-D: int |F_p - F_q|
    cdf_p, cdf_q = torch.special.ndtr((x - P[0]) / P[1]), torch.special.ndtr((x - Q[0]) / Q[1])
    return float(torch.trapezoid((cdf_p - cdf_q).abs(), x))


def optimal_critic(name, x):
    """The analytically optimal V (V larger on real): log r, log(r)/2, a large multiple of sign(log r), and for
    Wasserstein the 1-Lipschitz potential with slope sign(F_q - F_p)."""
    log_r = _log_normal(x, *P) - _log_normal(x, *Q)
    if name in ("js", "rkl"):
        return log_r
    if name == "hellinger":
        return log_r / 2
    if name == "tv":
        return 50.0 * torch.sign(log_r)
    grid = torch.linspace(-14.0, 16.0, 300001, dtype=torch.float64)
    slope = torch.sign(torch.special.ndtr((grid - Q[0]) / Q[1]) - torch.special.ndtr((grid - P[0]) / P[1]))
    potential = torch.cat([torch.zeros(1, dtype=torch.float64),
                           torch.cumsum((slope[1:] + slope[:-1]) / 2 * (grid[1:] - grid[:-1]), 0)])
    idx = torch.searchsorted(grid, x).clamp(1, grid.numel() - 1)
    w = (x - grid[idx - 1]) / (grid[idx] - grid[idx - 1])
    return potential[idx - 1] + w * (potential[idx] - potential[idx - 1])


def quantile_samples(mean, std, n=200000):
    """Deterministic 'perfect' samples: the distribution's quantiles at (i + 1/2) / n."""
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return mean + std * torch.special.ndtri(u)


@pytest.mark.parametrize("name", NAMES)
def test_bound_at_the_optimal_critic_is_the_true_divergence(name):
    """The objective's divergence estimate, fed the optimal critic on samples of P (real) and Q (fake), equals the
    divergence it claims to estimate (2 JSD - log 4, int (sqrt p - sqrt q)^2, KL(Q || P), TV, W1)."""
    truth = true_divergence(name)
    x_real, x_fake = quantile_samples(*P), quantile_samples(*Q)
    v_real, v_fake = optimal_critic(name, x_real), optimal_critic(name, x_fake)
    estimate = float(no_clamp(name).divergence(v_real, v_fake))
    assert estimate == pytest.approx(truth, rel=5e-4, abs=1e-5)
    # a perturbed critic gives a smaller value (it is a lower bound, maximised at the optimum)
    perturbed = no_clamp(name).divergence(optimal_critic(name, x_real + 0.3), optimal_critic(name, x_fake + 0.3))
    assert float(perturbed) < estimate - 1e-3
    if name in ("hellinger", "rkl"):  # with the default soft clamp: the optimum is V = c atanh(V* / c)
        c = losses.DEFAULT_CLAMP
        inv = lambda v: c * torch.atanh((v / c).clamp(-0.999, 0.999))  # noqa: E731
        clamped = float(losses.get_loss(name).divergence(inv(v_real), inv(v_fake)))
        assert clamped == pytest.approx(truth, rel=5e-4, abs=1e-5)


# ------------------------------------------------------------------------------------------------ fused op


def _op_inputs(kind, part, n_real, n_fake, dtype, device, scale=20.0):
    real = logits(n_real, dtype, scale, seed=10 + kind, device=device) if part == 0 else None
    return real, logits(n_fake, dtype, scale, seed=20 + part, device=device)


@functools.lru_cache(maxsize=None)
def exact_term(name, part, real, v, clamp):
    """(term, d term / dV) of one logit V (a float) at 50 digits, from the f-GAN table: s = clamp tanh(V / clamp)
    for the exp-based objectives; discriminator real -g(s) and fake f*(g(s)); generator non-saturating -g(s),
    saturating -f*(g(s)) (the dropped constants are added to the mean, see :func:`exact_loss`)."""
    g, f_star = EXACT[name]

    def s(x):
        return clamp * mpmath.tanh(x / clamp) if name in ("hellinger", "rkl") and clamp > 0 else x

    if part == 0:
        term = (lambda x: -g(s(x))) if real else (lambda x: f_star(g(s(x))))
    elif part == 1:
        term = lambda x: -g(s(x))  # noqa: E731
    else:
        term = lambda x: -f_star(g(s(x)))  # noqa: E731
    with mpmath.workdps(50):
        x = mpmath.mpf(v)
        return float(term(x)), float(mpmath.diff(term, x))


def exact_loss(kind, part, real, fake, clamp):
    """(loss, d loss / d real, d loss / d fake) in float64 from :func:`exact_term`: the means of the real and fake
    terms plus the constant the closed forms drop."""
    name = NAMES[kind]
    constant = (DROPPED_D, DROPPED_NS, DROPPED_SAT)[part][name]
    loss, grads = constant, []
    for values, is_real in ((real, True), (fake, False)):
        if values is None:
            grads.append(torch.zeros(0, dtype=torch.float64))
            continue
        terms = [exact_term(name, part, is_real, v, clamp) for v in values.double().cpu().tolist()]
        loss += sum(t for t, _ in terms) / len(terms)
        grads.append(torch.tensor([d / len(terms) for _, d in terms], dtype=torch.float64))
    return (torch.tensor(loss, dtype=torch.float64), *grads)


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_fused_op_matches_reference(backend, device, dtype):
    """(loss, d loss / d real, d loss / d fake) of every kind and part vs the f-GAN table at 50 digits."""
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-5, atol=1e-6)
    with ops.use_backend(backend):
        for kind in range(5):
            for part in range(3):
                for n_real, n_fake in [(1, 1), (7, 300), (600, 5)]:  # > one Triton block / CUDA block's threads
                    real, fake = _op_inputs(kind, part, n_real, n_fake, dtype, device)
                    got = _library.gan_loss(real, fake, kind, part, 15.0)
                    expect = exact_loss(kind, part, real, fake, 15.0)
                    acc = torch.float64 if dtype == torch.float64 else torch.float32
                    assert [t.dtype for t in got] == [acc] * 3 and got[1].shape == (n_real if part == 0 else 0,)
                    for a, b in zip(got, expect):
                        # gradients of the mean are O(1/n): compare relative to the largest of them
                        scale = max(float(b.abs().max()), 1e-30) if b.numel() else 1.0
                        torch.testing.assert_close(a.cpu().double() / scale, b / scale, **tol)


def ulps(got: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """|got - exact| in units of the float32 spacing at |exact| (2^-149 for zero and denormal values)."""
    e32 = exact.float().abs()
    spacing = (torch.nextafter(e32, torch.tensor(math.inf)) - e32).double()
    return (got.double().cpu() - exact).abs() / spacing


@pytest.mark.parametrize("backend,device", backend_params())  # the kernels (torch.sigmoid underflows to 0 early)
def test_float32_gradients_are_accurate_to_a_few_ulp(backend, device):
    """Per logit, d loss / d V in float32 within 8 ulp of the exact value (denormal ones included), for logits up
    to |V| = 100 (80 for the unclamped exponentials). An accurate float32 exp and IEEE division do this; fast math
    (CUDA's --use_fast_math: exp through the approximate exp2, denormals flushed to zero) misses by 50 ulp and more
    at large |V| and gives 0 for the denormals, so the CUDA kernels are built without it."""
    limit, tiny, loss_rtol = 8.0, 0.0, 1e-6
    if backend == "triton" and device == "cuda":  # tl.exp lowers to the approximate exp2 (about |V| 2^-24 relative)
        limit, tiny = 128.0, torch.finfo(torch.float32).tiny  # and may flush denormals
        loss_rtol = 1e-5  # the loss of 64 logits near |V| = 80: 1.2e-6 relative on an H200 (first GPU run)
    for kind, part in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (3, 0), (4, 0)]:
        top = 80.0 if kind in (1, 2) else 100.0
        values = torch.linspace(-top, top, 512, dtype=torch.float32)
        for chunk in values.to(device).split(64):
            real = chunk.flip(0) if part == 0 else None
            with ops.use_backend(backend):
                loss, grad_real, grad_fake = _library.gan_loss(real, chunk, kind, part, 0.0)
            exact, exact_real, exact_fake = exact_loss(kind, part, real, chunk, 0.0)
            for got, want in ((grad_fake, exact_fake), (grad_real, exact_real)):
                err = ulps(got, want)[want.abs() >= tiny]
                assert err.numel() == 0 or float(err.max()) <= limit, (kind, part, chunk[0])
            torch.testing.assert_close(loss.double().cpu(), exact, rtol=loss_rtol, atol=1e-7)
    small = exact_loss(0, 0, None, torch.tensor([-95.0]), 0.0)[2]  # sigmoid(-95) / 1 is a float32 denormal
    assert 0 < float(small) < torch.finfo(torch.float32).tiny


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_fused_losses_match_the_exact_values(backend, device, name):
    """The objects' methods, fused (torch: its plain path) and not: D + G / 2 + divergence / 4 and its .backward()
    gradients equal the f-GAN table at 50 digits (divergence = constant - D, so D's weight is 3/4)."""
    real0, fake0 = logits(64, torch.float32, 8.0, 5, device), logits(48, torch.float32, 8.0, 6, device)
    kind = losses.LOSSES[name].kind
    for fused in (True, False):
        for form in ("non_saturating", "saturating"):
            loss = losses.get_loss(name, generator_form=form, fused=fused)
            real, fake = real0.clone().unsqueeze(1).requires_grad_(), fake0.clone().requires_grad_()  # (B,1) too
            with ops.use_backend(backend):
                total = loss.discriminator(real, fake) + 0.5 * loss.generator(fake) + \
                    0.25 * loss.divergence(real, fake)
            total.backward()
            d_loss, d_real, d_fake = exact_loss(kind, 0, real0, fake0, loss.clamp)
            g_loss, _, g_fake = exact_loss(kind, 1 if form == "non_saturating" else 2, None, fake0, loss.clamp)
            constant = DROPPED_D[name]
            expect = (0.75 * d_loss + 0.5 * g_loss + 0.25 * constant, 0.75 * d_real, 0.75 * d_fake + 0.5 * g_fake)
            for got, want in zip((total.detach(), real.grad.squeeze(1), fake.grad), expect):
                torch.testing.assert_close(got.double().cpu(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend,device", ALL_BACKENDS)
def test_opcheck_and_higher_order_gradients(backend, device):
    with ops.use_backend(backend):
        for dtype in (torch.float32, torch.float64):
            real = logits(9, dtype, 4.0, 1, device).requires_grad_()
            fake = logits(6, dtype, 4.0, 2, device).requires_grad_()
            for kind in range(5):
                torch.library.opcheck(_library.gan_loss, (real, fake, kind, 0, 15.0))
                torch.library.opcheck(_library.gan_loss, (None, fake, kind, 1 + kind % 2, 0.0))
        real = logits(9, torch.float64, 4.0, 1, device).requires_grad_()
        fake = logits(6, torch.float64, 4.0, 2, device).requires_grad_()
        for name in NAMES:
            loss = losses.get_loss(name, generator_form="saturating")
            assert torch.autograd.gradcheck(loss.discriminator, (real, fake))
            assert torch.autograd.gradgradcheck(loss.discriminator, (real, fake))
            assert torch.autograd.gradgradcheck(loss.generator, (fake,))


def test_compile_fullgraph():
    """The fused loss traces into one graph (fake kernel, autograd) and gives the eager values and gradients."""
    loss = losses.get_loss("hellinger")
    ops.select(torch.device("cpu"))  # the backend module is loaded outside the trace

    def step(real, fake):
        return loss.discriminator(real, fake) + loss.generator(fake) + loss.divergence(real, fake).detach()

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True)
    outs = []
    for fn in (compiled, step):
        real, fake = logits(16, torch.float32, 3.0, 1).requires_grad_(), logits(16, torch.float32, 3.0, 2)
        fake.requires_grad_()
        out = fn(real, fake)
        out.backward()
        outs.append((out.detach(), real.grad, fake.grad))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------------------------------------ penalties


def _linear_discriminator(shape=(3, 2, 4, 4), seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(shape[1:], generator=gen, dtype=torch.float64).requires_grad_()
    u = torch.randn(shape[1:], generator=gen, dtype=torch.float64)

    def d_fn(x_prev, x_t, t, y=None):  # depends on x_t and t too: only x_prev may be differentiated
        out = (x_prev * w).flatten(1).sum(1) + 3.0 * (x_t * u).flatten(1).sum(1) + t.to(x_prev.dtype)
        return out if y is None else out + y.to(out.dtype)

    x_prev = torch.randn(shape, generator=gen, dtype=torch.float64)
    x_t = torch.randn(shape, generator=gen, dtype=torch.float64)
    return d_fn, w, x_prev, x_t, torch.arange(shape[0])


def test_r1_penalty_on_a_linear_discriminator():
    d_fn, w, x_prev, x_t, t = _linear_discriminator()
    x_prev.requires_grad_()
    r1 = losses.r1_penalty(d_fn(x_prev, x_t, t), x_prev)
    norm2 = w.detach().pow(2).sum()
    torch.testing.assert_close(r1, norm2)
    r1.backward()  # create_graph: the penalty trains D, d ||w||^2 / dw = 2 w
    torch.testing.assert_close(w.grad, 2 * w.detach())


def test_gradient_penalty_on_a_linear_discriminator():
    d_fn, w, real_prev, x_t, t = _linear_discriminator()
    fake_prev = real_prev + torch.randn_like(real_prev)
    y = torch.tensor([0, 1, 2])
    gp = losses.gradient_penalty(d_fn, real_prev, fake_prev.requires_grad_(), x_t, t, y,
                                 generator=torch.Generator().manual_seed(0))
    norm = w.detach().pow(2).sum().sqrt()
    torch.testing.assert_close(gp, (norm - 1) ** 2)
    gp.backward()
    torch.testing.assert_close(w.grad, 2 * (norm - 1) * w.detach() / norm)
    assert fake_prev.grad is None  # the penalty does not reach the generator's sample


def test_gradient_penalty_uses_interpolates_of_x_prev_only():
    """A critic whose gradient in x_prev depends on x_prev: the penalty is the mean over a x_r + (1 - a) x_f."""
    w = torch.tensor([2.0], dtype=torch.float64)

    def d_fn(x_prev, x_t, t, y):
        return (w * x_prev.pow(2)).flatten(1).sum(1) + (x_t * 100).flatten(1).sum(1)

    real, fake = torch.ones(4, 1, dtype=torch.float64), torch.zeros(4, 1, dtype=torch.float64)
    gen = torch.Generator().manual_seed(7)
    alpha = torch.rand((4, 1), generator=torch.Generator().manual_seed(7))
    gp = losses.gradient_penalty(d_fn, real, fake, torch.randn(4, 1, dtype=torch.float64), None, generator=gen)
    torch.testing.assert_close(gp, ((4.0 * alpha.double()).abs().squeeze(1) - 1).pow(2).mean())


@pytest.mark.parametrize("name", NAMES)
def test_divergence_per_group_is_the_bound_within_each_group(name):
    """Entry k is ``divergence`` on the pairs of group k, NaN for an empty group (4 of 0..4 here), and the
    count-weighted mean of the entries is the whole batch's bound."""
    loss = losses.get_loss(name, fused=False)
    real, fake = logits(40, seed=1), logits(40, seed=2)
    group = torch.randint(0, 4, (40,), generator=torch.Generator().manual_seed(3))
    per_group = loss.divergence_per_group(real, fake, group, 5)
    assert per_group.shape == (5,) and per_group.dtype == torch.float64 and torch.isnan(per_group[4])
    for k in range(4):
        chosen = group == k
        torch.testing.assert_close(per_group[k], loss.divergence(real[chosen], fake[chosen]))
    counts = torch.bincount(group, minlength=5)[:4].double()
    torch.testing.assert_close((per_group[:4] * counts).sum() / 40, loss.divergence(real, fake))
    with pytest.raises(ValueError, match="group: expected one index per pair"):
        loss.divergence_per_group(real, fake, group[:39], 5)


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_input():
    loss = losses.get_loss("js")
    real = torch.zeros(4)
    with pytest.raises(ValueError, match=r"unknown objective 'kl'.*'hellinger'.*'js'.*'rkl'.*'tv'.*'wasserstein'"):
        losses.get_loss("kl")
    with pytest.raises(ValueError, match="generator_form"):
        losses.get_loss("js", generator_form="minimax")
    with pytest.raises(TypeError, match="gp_lambda"):
        losses.get_loss("js", gp_lambda=1.0)
    with pytest.raises(TypeError, match="clamp"):
        losses.get_loss("wasserstein", clamp=1.0)
    with pytest.raises(ValueError, match="clamp"):
        losses.get_loss("hellinger", clamp=-1.0)
    with pytest.raises(ValueError, match="gp_lambda"):
        losses.get_loss("wasserstein", gp_lambda=-1.0)
    with pytest.raises(ValueError, match="n_critic"):
        losses.get_loss("wasserstein", n_critic=0)
    with pytest.raises(TypeError, match="real_logits"):
        loss.discriminator([0.0], real)
    with pytest.raises(TypeError, match="fake_logits"):
        loss.discriminator(real, torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="fake_logits.*shape"):
        loss.generator(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="real_logits.*empty"):
        loss.discriminator(torch.zeros(0), real)
    with pytest.raises(ValueError, match="fake_logits.*device"):
        loss.discriminator(real, torch.zeros(4, device="meta"))
    with pytest.raises(ValueError, match="x_prev"):
        losses.r1_penalty(torch.zeros(4, requires_grad=True) * 2, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="fake_prev"):
        losses.gradient_penalty(lambda *a: a[0].sum(1), torch.zeros(4, 3), torch.zeros(5, 3), None, None)
    with pytest.raises(TypeError, match="discriminator_fn"):
        losses.gradient_penalty(None, torch.zeros(4, 3), torch.zeros(4, 3), None, None)


def test_op_rejects_misuse():
    fake = torch.zeros(4)
    with pytest.raises(RuntimeError, match="kind"):
        _library.gan_loss(fake, fake, 7, 0, 15.0)
    with pytest.raises(RuntimeError, match="real logits for the discriminator part only"):
        _library.gan_loss(None, fake, 0, 0, 15.0)
    with pytest.raises(RuntimeError, match="real logits for the discriminator part only"):
        _library.gan_loss(fake, fake, 0, 1, 15.0)
    with pytest.raises(RuntimeError, match="1-D"):
        _library.gan_loss(None, torch.zeros(2, 2), 0, 1, 15.0)
    with pytest.raises(RuntimeError, match="same dtype"):
        _library.gan_loss(fake.double(), fake, 0, 0, 15.0)


def test_probe_smoke(capsys):
    """The 1-D two-mode probe that chose the defaults runs (a few steps) and reports coverage."""
    from fastddgan.losses import probe

    result = probe.run(losses.get_loss("wasserstein"), steps=20, seed=0, batch=64)
    assert set(result) >= {"shares", "modes", "quality", "finite"} and result["finite"]
    assert probe.coverage(torch.tensor([-2.0, 2.0, 2.1, 0.0]))["modes"] == 2
    probe.main(["--losses", "js", "--seeds", "1", "--steps", "5", "--forms", "saturating", "--r1-gamma", "0.02"])
    assert "js" in capsys.readouterr().out


@pytest.mark.skipif("cpp" not in ops.available("cpu"), reason="the cpp backend is not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_loss_is_the_same_with_one_or_two_threads(dtype):
    """The CPU kernel sums fixed chunks of logits and adds the chunks' sums in order: the same bits with 1 and 2
    threads (tests run single-threaded, tests/conftest.py), and the reference's values within the tolerance of
    test_fused_op_matches_reference, on batches of several chunks."""
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-5, atol=1e-6)
    gen = torch.Generator().manual_seed(0)
    real, fake = (4 * torch.randn(n, generator=gen, dtype=dtype) for n in (3 * 4096 + 5, 2 * 4096 + 1))
    before = torch.get_num_threads()
    try:
        with ops.use_backend("cpp"):
            for kind in range(5):
                for part in range(3):
                    args = (real if part == 0 else None, fake, kind, part, 15.0)
                    outs = []
                    for threads in (1, 2):
                        torch.set_num_threads(threads)
                        outs.append(_library.gan_loss(*args))
                    assert all(torch.equal(a, b) for a, b in zip(*outs))
                    for a, b in zip(outs[0], ops.reference.gan_loss(*args)):
                        torch.testing.assert_close(a, b, **tol)
    finally:
        torch.set_num_threads(before)
