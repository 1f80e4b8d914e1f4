"""Differentiable augmentation of the DDGAN discriminator's pairs (fastddgan.augment, DiffAugment)."""

import pytest
import torch

from fastddgan.augment import PairAugment, cutout_mask, parse_policy, translate
from fastddgan.train import config as train_config

from test_training import batch, tiny_ddgan


def shifted_by_loops(x, dy, dx):
    """The definition, one pixel at a time: out[b, :, i, j] = x[b, :, i - dy, j - dx], 0 outside."""
    out = torch.zeros_like(x)
    b, _, h, w = x.shape
    for k in range(b):
        for i in range(h):
            for j in range(w):
                si, sj = i - int(dy[k]), j - int(dx[k])
                if 0 <= si < h and 0 <= sj < w:
                    out[k, :, i, j] = x[k, :, si, sj]
    return out


def test_translate_is_the_per_pixel_shift():
    x = torch.randn(5, 2, 6, 7)
    dy, dx = torch.tensor([-2, 0, 1, 2, -1]), torch.tensor([3, -3, 0, 1, -2])
    (out,) = translate([x], dy, dx, 2, 3)
    torch.testing.assert_close(out, shifted_by_loops(x, dy, dx), rtol=0, atol=0)
    assert out.is_contiguous()


def test_cutout_mask_is_a_square_clipped_at_the_borders():
    m = cutout_mask((3, 1, 8, 8), torch.tensor([4, 0, 7]), torch.tensor([4, 0, 3]), 4, torch.float32, "cpu")
    assert m.shape == (3, 1, 8, 8)
    assert torch.equal((m[0, 0] == 0).nonzero().amin(0), torch.tensor([2, 2]))  # rows / cols 2..5
    assert int((m[0] == 0).sum()) == 16
    assert int((m[1] == 0).sum()) == 4  # centre at the corner: rows / cols 0..1 only
    assert int((m[2] == 0).sum()) == 12  # bottom edge: rows 5..8 clipped to 5..7, cols 1..4


def test_both_members_of_a_pair_get_the_same_transform_and_samples_differ():
    x = torch.randn(64, 1, 28, 28)
    u, v = PairAugment("translation,cutout")((x, 3 * x), torch.Generator().manual_seed(0))
    torch.testing.assert_close(v, 3 * u, rtol=0, atol=0)
    zeros = (u == 0).flatten(1).sum(1)
    assert zeros.min() > 0 and len(set(zeros.tolist())) > 10  # every sample masked, by different amounts


def test_translation_draws_every_shift_in_range_and_keeps_the_pixels():
    """28x28: shifts uniform in [-4, 4] per axis; the content moved, not changed (a shifted one-hot pixel)."""
    x = torch.zeros(4000, 1, 28, 28)
    x[:, 0, 14, 14] = 1.0
    (out,) = PairAugment("translation")((x,), torch.Generator().manual_seed(1))
    assert torch.all(out.flatten(1).sum(1) == 1.0)
    pos = out.flatten(1).argmax(1)
    dy, dx = pos // 28 - 14, pos % 28 - 14
    assert set(dy.tolist()) == set(range(-4, 5)) == set(dx.tolist())
    counts = torch.bincount(dy + 4, minlength=9).float()
    assert counts.min() > 0.7 * 4000 / 9  # about uniform


def test_augmentation_is_differentiable_and_reproducible_from_the_generator():
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    aug = PairAugment(("translation", "cutout"))
    f = lambda v: aug((v,), torch.Generator().manual_seed(2))[0]
    assert torch.autograd.gradcheck(f, (x,))
    torch.testing.assert_close(f(x), f(x), rtol=0, atol=0)
    assert not torch.equal(f(x), aug((x,), torch.Generator().manual_seed(3))[0])


@pytest.mark.parametrize("policy, message", [
    ("rotate", "diffaug: expected distinct names"), ("translation,translation", "diffaug: expected distinct names"),
    (3, "diffaug: expected a comma-separated string")])
def test_bad_policies_are_refused_by_name(policy, message):
    with pytest.raises((ValueError, TypeError), match=message):
        parse_policy(policy)


def test_bad_augment_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="policy: expected at least one"):
        PairAugment("")
    with pytest.raises(ValueError, match="cutout_ratio: expected a fraction"):
        PairAugment("cutout", cutout_ratio=1.5)
    with pytest.raises(ValueError, match=r"tensors: expected images of one shape"):
        PairAugment("cutout")((torch.zeros(2, 5), torch.zeros(2, 5)))


def recorded_discriminator_inputs(model, x0, step):
    seen = []
    hook = model.discriminator.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    try:
        step(x0, None, torch.Generator().manual_seed(4))
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("step", ["discriminator_step", "generator_step"])
def test_ddgan_shows_its_discriminator_augmented_pairs_in_both_steps(step):
    """With translation the padded zeros reach D (the pair members are continuous noise: no exact zeros without)."""
    x0, _ = batch(16)
    torch.manual_seed(0)
    plain = tiny_ddgan()
    torch.manual_seed(0)
    augmented = tiny_ddgan(diffaug="translation")
    for inputs in recorded_discriminator_inputs(plain, x0, getattr(plain, step)):
        assert int((inputs == 0).sum()) == 0
    seen = recorded_discriminator_inputs(augmented, x0, getattr(augmented, step))
    assert seen and all(int((inputs == 0).sum()) > 0 for inputs in seen)
    assert augmented.objective.augment is not None and plain.objective.augment is None


def test_ddgan_trains_with_augmentation_and_r1_flows_through_it():
    torch.manual_seed(0)
    model = tiny_ddgan(diffaug="translation,cutout", r1_gamma=1.0)
    x0, _ = batch()
    for _ in range(2):
        metrics = model.train_step(x0)
    assert all(torch.isfinite(v) for v in metrics.values()) and float(metrics["r1"]) > 0
    with pytest.raises(ValueError, match=r"diffaug: augments images \(C, H, W\)"):
        tiny_ddgan(diffaug="cutout").__class__(model.generator, model.discriminator, 4, sample_shape=(2,),
                                               diffaug="cutout")


IMAGES = {"kind": "image", "channels": 1, "image_size": 28, "num_classes": 10, "size": 5000, "device": "cpu"}
POINTS = {"kind": "toy", "channels": None, "image_size": None, "num_classes": None, "size": None}


def resolved(*argv):
    info = POINTS if "ring8" in argv else IMAGES
    return train_config.resolve(train_config.parse([*argv, "--out", "unused"]), info)


def test_the_training_cli_takes_diffaug_for_image_ddgans_only():
    assert resolved("--dataset", "mnist5k", "--diffaug", "cutout, translation")["diffaug"] == "cutout,translation"
    assert resolved("--dataset", "mnist5k")["diffaug"] == ""
    for argv, message in [(("--dataset", "ring8", "--diffaug", "translation"), "--diffaug: .* not 2-D data"),
                          (("--dataset", "mnist5k", "--model", "ddpm", "--diffaug", "cutout"), "--diffaug: .* ddpm"),
                          (("--dataset", "mnist5k", "--diffaug", "flip"), "--diffaug: expected distinct names")]:
        with pytest.raises(train_config.ConfigError, match=message):
            resolved(*argv)
    # runs saved before the option existed resume as runs without augmentation
    stored = {k: v for k, v in resolved("--dataset", "mnist5k").items() if k != "diffaug"}
    assert "diffaug" not in " ".join(train_config.incompatible(stored, resolved("--dataset", "mnist5k")))
    assert train_config.incompatible(stored, resolved("--dataset", "mnist5k", "--diffaug", "cutout"))


def test_a_runs_title_names_its_network_overrides_and_augmentation():
    """The sample grids' and curves' titles say what differs from the preset (a --net run is not the preset)."""
    from types import SimpleNamespace

    from fastddgan.train.loop import Trainer

    c = resolved("--dataset", "mnist5k", "--net", "generator.ch=32", "--diffaug", "translation")
    assert Trainer.describe(SimpleNamespace(c=c)) == \
        "DDGAN hellinger, T=4 on mnist5k (preset mnist-cpu, net generator.ch=32, diffaug translation)"
    assert Trainer.describe(SimpleNamespace(c=resolved("--dataset", "mnist5k"))) == \
        "DDGAN hellinger, T=4 on mnist5k (preset mnist-cpu)"
