"""DDPM and DDGAN training and sampling on tiny models (CPU)."""

import pytest
import torch

from fastddgan import Schedule
from fastddgan.checkpoint import from_preset
from fastddgan.ddgan import DDGAN
from fastddgan.ddpm import DDPM
from fastddgan.models import build, preset


def tiny_ddpm(**kwargs):
    kwargs.setdefault("sample_shape", (1, 28, 28))
    return DDPM(build("tiny", "denoiser", num_classes=kwargs.get("num_classes")), Schedule.linear(100), **kwargs)


def tiny_ddgan(**kwargs):
    n = kwargs.get("num_classes")
    return DDGAN(build("tiny", "generator", num_classes=n), build("tiny", "discriminator", num_classes=n), 4,
                 sample_shape=(1, 28, 28), **kwargs)


def batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.randint(0, 10, (n,), generator=g)


def adam_first_step_change(grads, clipped, lr):
    """The first-order change of the loss in one first Adam step: -sum_i g_i u_i with the update
    u_i = lr c_i / (|c_i| + 1e-8) (bias-corrected first moment c, second moment c^2), where g is the loss's gradient
    and c the gradient the step used (after clipping)."""
    return -sum(float((g * lr * c / (c.abs() + 1e-8)).sum()) for g, c in zip(grads, clipped))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_ddpm_step_lowers_its_loss_by_the_first_order_prediction(prediction):
    """One train_step on a fixed objective (the same batch, t and eps) is an Adam step on L_simple's gradient
    (clipped to norm 1): the loss changes by -sum_i g_i u_i to within 5% (the learning rate is chosen for a 0.1%
    change, where the second-order term is negligible); a step along any other direction or of another size
    would not."""
    torch.manual_seed(0)
    model = tiny_ddpm(prediction=prediction)
    x0, _ = batch()
    fixed = lambda: torch.Generator().manual_seed(1)  # same t and eps every time: a fixed objective
    params = list(model.model.parameters())
    first = model.loss(x0, generator=fixed())
    grads = torch.autograd.grad(first, params)
    lr = 1e-3 * float(first.detach()) / sum(float(g.abs().sum()) for g in grads)
    for group in model.optimizer.param_groups:
        group["lr"] = lr
    norm = float(torch.stack([g.norm() for g in grads]).norm())
    clipped = [g * min(1.0, 1.0 / (norm + 1e-6)) for g in grads]  # clip_grad_norm_ to max_norm 1
    model.train_step(x0, generator=fixed())
    with torch.no_grad():
        change = float(model.loss(x0, generator=fixed())) - float(first.detach())
    assert change / adam_first_step_change(grads, clipped, lr) == pytest.approx(1.0, abs=0.05)
    assert any(not torch.equal(p, q) for p, q in zip(model.model.parameters(), model.ema.module.parameters()))


def test_ddpm_sampling_respaced_ddim_and_guidance():
    torch.manual_seed(0)
    model = tiny_ddpm(num_classes=10)
    x0, y = batch()
    model.train_step(x0, y)
    for T in (1, 5, 100):
        out = model.sample(2, T=T, y=y[:2], generator=torch.Generator().manual_seed(0))
        assert out.shape == (2, 1, 28, 28) and torch.isfinite(out).all()
    a = model.sample(2, T=5, ddim=True, y=y[:2], generator=torch.Generator().manual_seed(3))
    b = model.sample(2, T=5, ddim=True, y=y[:2], generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    plain = model.sample(2, T=5, y=y[:2], generator=torch.Generator().manual_seed(4))
    w0 = model.sample(2, T=5, y=y[:2], guidance=0.0, generator=torch.Generator().manual_seed(4))
    w2 = model.sample(2, T=5, y=y[:2], guidance=2.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(plain, w0) and not torch.allclose(plain, w2)


def test_ddpm_bad_input():
    model = tiny_ddpm()
    with pytest.raises(ValueError, match=r"T: expected an integer in \[1, 100\]"):
        model.sample(1, T=101)
    with pytest.raises(ValueError, match="guidance: classifier-free guidance needs a class-conditional model"):
        model.sample(1, guidance=1.0)
    with pytest.raises(ValueError, match="y: this model is unconditional"):
        model.sample(1, y=torch.tensor([1]))
    with pytest.raises(ValueError, match="prediction: expected one of"):
        tiny_ddpm(prediction="score")
    cond = tiny_ddpm(num_classes=10)
    with pytest.raises(ValueError, match=r"y: expected labels in \[0, 10\]"):
        cond.sample(1, y=torch.tensor([11]))
    with pytest.raises(ValueError, match="y: expected 2 labels"):
        cond.sample(2, y=torch.tensor([1, 2, 3]))


def test_ddgan_discriminator_step_is_an_adam_step_on_its_loss_without_generator_gradients():
    """Without R1 the D step minimises exactly loss_d: on a fixed batch (the same t, pairs, z and noise), the next
    step's loss_d differs from the first by the first-order change of one Adam step along the gradient the step
    left in D's parameters, to within 5%."""
    torch.manual_seed(0)
    model = tiny_ddgan(lr_d=1e-5, r1_gamma=0.0)
    x0, _ = batch()
    fixed = lambda: torch.Generator().manual_seed(5)
    first = float(model.discriminator_step(x0, None, fixed())["loss_d"])
    grads = [p.grad.clone() for p in model.discriminator.parameters()]
    change = float(model.discriminator_step(x0, None, fixed())["loss_d"]) - first
    assert change / adam_first_step_change(grads, grads, 1e-5) == pytest.approx(1.0, abs=0.05)
    assert all(p.grad is None for p in model.generator.parameters()), "the D step must not backprop into G"


def test_ddgan_generator_step_leaves_discriminator_gradients_alone():
    torch.manual_seed(0)
    model = tiny_ddgan()
    x0, _ = batch()
    model.discriminator_step(x0, None)
    d_grads = [p.grad.clone() for p in model.discriminator.parameters()]
    metrics = model.generator_step(x0, None)
    assert set(metrics) == {"loss_g"}
    assert all(torch.equal(g, p.grad) for g, p in zip(d_grads, model.discriminator.parameters()))
    assert all(p.grad is not None for p in model.generator.parameters())
    assert all(p.requires_grad for p in model.discriminator.parameters())


@pytest.mark.parametrize("loss", ["js", "hellinger", "rkl", "tv", "wasserstein"])
def test_ddgan_train_step_every_objective(loss):
    torch.manual_seed(0)
    model = tiny_ddgan(loss=loss, lazy_reg=2)
    x0, _ = batch()
    for _ in range(2):
        metrics = model.train_step(x0)
    per_step = {f"divergence_t{t}" for t in range(4)}  # the bound per reverse step, NaN for a t the batch lacks
    assert {"loss_d", "loss_g", "divergence"} | per_step <= set(metrics)
    assert all(v.dim() == 0 and torch.isfinite(v) for k, v in metrics.items() if k not in per_step)
    assert all(not torch.isinf(metrics[k]) for k in per_step) and any(torch.isfinite(metrics[k]) for k in per_step)
    assert ("gp" in metrics) == (loss == "wasserstein")
    assert any(not torch.equal(p, q) for p, q in zip(model.generator.parameters(), model.ema.module.parameters()))


def test_per_step_divergence_key_round_trip():
    from fastddgan.metric_keys import per_step_divergence_key, per_step_divergence_t

    assert [per_step_divergence_t(per_step_divergence_key(t)) for t in (0, 3, 15)] == [0, 3, 15]
    assert [per_step_divergence_t(k) for k in ("divergence", "divergence_tx", "divergence_t1x", "loss_d")] == [None] * 4


def test_ddgan_sampling_and_guidance():
    torch.manual_seed(0)
    model = tiny_ddgan(num_classes=10)
    x0, y = batch()
    model.train_step(x0, y)
    out = model.sample(3, y=y[:3], generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 28, 28) and torch.isfinite(out).all()
    again = model.sample(3, y=y[:3], generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    w0 = model.sample(3, y=y[:3], guidance=0.0, generator=torch.Generator().manual_seed(0))
    w1 = model.sample(3, y=y[:3], guidance=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, w0) and not torch.allclose(out, w1)
    with pytest.raises(ValueError, match=r"T: this DDGAN was trained with T=4 and samples with it, got T=2"):
        model.sample(1, T=2)
    with pytest.raises(ValueError, match="guidance: guided sampling needs class labels"):
        model.sample(1, guidance=1.0)


def test_ddgan_guidance_is_x0_space_guidance_with_the_same_z():
    torch.manual_seed(0)
    model = tiny_ddgan(num_classes=10)
    G = model.ema.module.eval()
    x_t = torch.randn(2, 1, 28, 28)
    z = torch.randn(2, model.nz)
    t = torch.tensor([3, 1])
    y = torch.tensor([4, 7])
    w = 0.5
    with torch.no_grad():
        expect = ((1 + w) * G(x_t, z, t, y) - w * G(x_t, z, t, torch.tensor([10, 10]))).clamp(-1, 1)
        got = model.predict_x0(G, x_t, z, t, y, guidance=w)
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-5)


def test_ddgan_bad_input():
    with pytest.raises(ValueError, match="lazy_reg: expected an integer >= 1"):
        tiny_ddgan(lazy_reg=0)
    with pytest.raises(ValueError, match="amp: expected None"):
        tiny_ddgan(amp="fp8")
    with pytest.raises(ValueError, match="loss|name"):
        tiny_ddgan(loss="kl")
    with pytest.raises(ValueError, match="T: expected an integer >= 1"):
        DDGAN(build("tiny", "generator"), build("tiny", "discriminator"), 0)
    for bad in (-1e-6, float("nan"), float("inf"), True, "1e-6"):
        with pytest.raises(ValueError, match="diversity: expected a finite number >= 0"):
            tiny_ddgan(diversity=bad)


def test_ddgan_bf16_autocast_and_compiled_networks_train():
    torch.manual_seed(0)
    G, D = build("toy2d", "generator"), build("toy2d", "discriminator")
    model = DDGAN(G, D, 4, sample_shape=(2,), clip_x0=False, amp="bf16", compile=True, lazy_reg=2)
    assert not any(key.startswith("_train_nets") for key in model.state_dict())
    x0 = torch.randn(16, 2)
    for _ in range(3):  # steps 0 and 2 use R1 (eager D for the double backward), step 1 the compiled D
        metrics = model.train_step(x0)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in metrics.values())
    assert model.sample(4).shape == (4, 2)


def test_wasserstein_critic_rejects_minibatch_std():
    config = preset("tiny")
    config["discriminator"]["minibatch_std"] = True
    D = build(config, "discriminator")
    with pytest.raises(ValueError, match="discriminator: a Wasserstein critic must not couple samples"):
        DDGAN(build("tiny", "generator"), D, 4, loss="wasserstein")


@pytest.mark.parametrize("make", [tiny_ddgan, tiny_ddpm])
def test_training_continues_after_sampling(make):
    """fastddgan.sample runs under inference mode; what it caches (the kernels' coefficient tables) must still
    serve a training step's autograd afterwards ('Inference tensors cannot be saved for backward' before)."""
    import fastddgan

    model = make()
    x0, _ = batch()
    fastddgan.sample(model, n=2, seed=0)  # first: the tables are built here, under inference mode
    metrics = model.train_step(x0)
    assert all(torch.isfinite(v) for v in metrics.values())
    assert model.step == 1


@pytest.mark.parametrize("loss", ["tv", "wasserstein"])
def test_ddgan_drift_penalty_is_the_mean_squared_real_logit(loss):
    """drift * E_data[V^2] joins the D loss, measured on the same true pairs the step uses."""
    torch.manual_seed(0)
    model = tiny_ddgan(loss=loss, loss_options={"drift": 0.5}, r1_gamma=0.0)
    x0, _ = batch()
    t, x_prev, x_t = model._pair(x0, torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = model.discriminator(x_prev, x_t, t).float().pow(2).mean()
    metrics = model.discriminator_step(x0, None, torch.Generator().manual_seed(7))
    torch.testing.assert_close(metrics["drift"], expected)
    assert "drift" not in tiny_ddgan(loss=loss, loss_options={"drift": 0.0}, r1_gamma=0.0).discriminator_step(x0, None)
    with pytest.raises(ValueError, match="drift: expected a finite number >= 0"):
        tiny_ddgan(loss=loss, loss_options={"drift": -1.0})


def test_fp16_steps_use_a_loss_scaler_that_skips_overflows_and_unscales():
    """amp="fp16" scales the loss (bf16 and fp32 do not): a step whose scaled gradients overflow is skipped (the
    weights and Adam's state untouched) and the scale halved; a clean step's gradients are unscaled, i.e. those of
    the fp32 loss up to fp16 rounding, not S times them."""
    assert not tiny_ddpm(amp="bf16").grad_scalers["model"].is_enabled()
    assert not any(s.is_enabled() for s in tiny_ddgan().grad_scalers.values())
    assert all(s.is_enabled() for s in tiny_ddgan(amp="fp16").grad_scalers.values())
    torch.manual_seed(0)
    model = tiny_ddpm(amp="fp16", grad_clip=None)
    scaler = model.grad_scalers["model"]
    x0, _ = batch()
    fixed = lambda: torch.Generator().manual_seed(1)
    before = [p.detach().clone() for p in model.model.parameters()]
    scaler.load_state_dict({**scaler.state_dict(), "scale": 2.0**100})  # any fp16 gradient overflows
    model.train_step(x0, generator=fixed())
    assert scaler.get_scale() == 2.0**99
    # Adam's state untouched: none yet, or (the fused kernel, which skips inside) its zeros at step 0
    assert all(float(v.abs().sum()) == 0 for st in model.optimizer.state.values() for v in st.values())
    assert all(torch.equal(p, q) for p, q in zip(model.model.parameters(), before))
    model.objective.amp = None  # the fp32 gradient at the same weights
    fp32 = torch.autograd.grad(model.loss(x0, generator=fixed()), list(model.model.parameters()))
    model.objective.amp = "fp16"
    scaler.update(2.0**10)
    model.train_step(x0, generator=fixed())
    assert scaler.get_scale() == 2.0**10 and model.optimizer.state
    got, want = torch.cat([p.grad.flatten() for p in model.model.parameters()]), torch.cat([g.flatten() for g in fp32])
    assert float((got - want).norm() / want.norm()) < 0.02  # fp16 rounding (unscaled: not 1024 times)


def toy_ddgan(**kwargs):
    return from_preset("ddgan", "toy2d", Schedule.cosine(4), **kwargs)


def test_diversity_term_is_the_inverse_latent_ratio_on_the_last_step():
    """mean over the t = 0 samples of 1 / (r + 1e-4), r = mean|G(x_1, z1) - G(x_1, z2)| / mean|z1 - z2| with two
    latents drawn after the batch's own; None without t = 0 samples."""
    torch.manual_seed(0)
    model = toy_ddgan(diversity=1e-3)
    x_t, t = torch.randn(16, 2), torch.tensor([0, 1, 2, 3] * 4)
    term = model.objective.inverse_latent_ratio(model, x_t, t, None, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    z1, z2 = torch.randn(4, model.nz, generator=g), torch.randn(4, model.nz, generator=g)
    x1, t0 = x_t[t == 0], t[t == 0]
    with torch.no_grad():
        r = (model.generator(x1, z1, t0) - model.generator(x1, z2, t0)).abs().mean(1) / (z1 - z2).abs().mean(1)
    assert float(term) == pytest.approx(float((1 / (r + 1e-4)).mean()), rel=1e-6)
    assert term.requires_grad  # it trains G
    assert model.objective.inverse_latent_ratio(model, x_t[t > 0], t[t > 0], None, None) is None


def test_diversity_weighs_each_last_step_sample_alike_at_every_T(monkeypatch):
    """G's loss adds diversity / T x the term (a mean over the batch's t = 0 samples, a 1 / T share of G's loss's
    mean): the loss G backpropagates is the GAN loss plus exactly that, for T = 2 and T = 8."""
    for T in (2, 8):
        seen = []
        torch.manual_seed(0)
        model = from_preset("ddgan", "toy2d", Schedule.cosine(T), diversity=0.5)
        monkeypatch.setattr(model.train_state, "backward", lambda name, loss: seen.append(loss.detach()))
        monkeypatch.setattr(model.train_state, "optimizer_step", lambda name: None)
        metrics = model.generator_step(torch.randn(64, 2), None, torch.Generator().manual_seed(1))
        added = float(seen[0]) - float(metrics["loss_g"])
        assert added == pytest.approx(0.5 / T * float(metrics["inverse_latent_ratio"]), rel=1e-5)


def test_diversity_steps_choose_the_samples_and_scale_the_weight(monkeypatch):
    """With diversity_steps (1, 2) the term is the mean over the samples with t in {1, 2} (two latents drawn after
    the batch's own, as on the last step), and G's loss adds diversity x 2 / T x it; bad steps are refused."""
    torch.manual_seed(0)
    model = toy_ddgan(diversity=0.5, diversity_steps=(2, 1))
    assert model.diversity_steps == (1, 2)
    x_t, t = torch.randn(16, 2), torch.tensor([0, 1, 2, 3] * 4)
    term = model.objective.inverse_latent_ratio(model, x_t, t, None, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    chosen = (t == 1) | (t == 2)
    z1, z2 = torch.randn(8, model.nz, generator=g), torch.randn(8, model.nz, generator=g)
    with torch.no_grad():
        r = (model.generator(x_t[chosen], z1, t[chosen]) - model.generator(x_t[chosen], z2, t[chosen])).abs().mean(1) \
            / (z1 - z2).abs().mean(1)
    assert float(term) == pytest.approx(float((1 / (r + 1e-4)).mean()), rel=1e-6)
    assert model.objective.inverse_latent_ratio(model, x_t[~chosen], t[~chosen], None, None) is None
    seen = []
    monkeypatch.setattr(model.train_state, "backward", lambda name, loss: seen.append(loss.detach()))
    monkeypatch.setattr(model.train_state, "optimizer_step", lambda name: None)
    metrics = model.generator_step(torch.randn(64, 2), None, torch.Generator().manual_seed(1))
    added = float(seen[0]) - float(metrics["loss_g"])
    assert added == pytest.approx(0.5 * 2 / 4 * float(metrics["inverse_latent_ratio"]), rel=1e-5)
    for bad, error in (((4,), ValueError), ((), ValueError), ((1, 1), ValueError), ((-1,), ValueError),
                       ("0", TypeError), ((0.5,), ValueError)):
        with pytest.raises(error, match="diversity_steps"):
            toy_ddgan(diversity_steps=bad)


def test_diversity_makes_the_last_step_use_its_latent():
    """Two runs of generator steps from the same start, with a large weight and without: with it, G's outputs at
    t = 0 depend on z several times more; diversity 0 adds no metric."""
    x0 = torch.randn(64, 2) * 0.02 + torch.tensor([2.0, 0.0])

    def z_dependence(diversity):
        torch.manual_seed(0)
        model = toy_ddgan(diversity=diversity, lr_d=1e-12)
        for _ in range(60):
            metrics = model.generator_step(x0, None, torch.Generator().manual_seed(1))
        assert ("inverse_latent_ratio" in metrics) == (diversity > 0)
        g = torch.Generator().manual_seed(2)
        x1, t0 = torch.randn(256, 2, generator=g), torch.zeros(256, dtype=torch.long)
        with torch.no_grad():
            a = model.generator(x1, torch.randn(256, model.nz, generator=g), t0)
            b = model.generator(x1, torch.randn(256, model.nz, generator=g), t0)
        return float((a - b).abs().mean())

    assert z_dependence(10.0) > 3 * z_dependence(0.0)
