"""Checkpoints: atomic writes, a full round trip, sampling from a path, and clear errors for foreign files."""

import os

import pytest
import torch

import fastddgan
from fastddgan import checkpoint


@pytest.fixture
def trained():
    torch.manual_seed(0)
    model = fastddgan.from_preset("ddgan", "tiny", schedule=2, num_classes=10, loss="hellinger", lazy_reg=2,
                                  total_steps=100)
    x0, y = torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([1, 2, 3, 4])
    for _ in range(2):
        model.train_step(x0, y)
    return model


@pytest.mark.parametrize("kind", ["ddgan", "ddpm"])
def test_fp16_loss_scalers_are_saved_and_restored(kind, tmp_path):
    """The fp16 loss scalers' state (scale, growth tracker) goes into the checkpoint and back into a model built
    with amp="fp16" (as --resume builds it); fp32 checkpoints hold none, and an fp16 model resumed from one
    starts from the default scale."""
    T = 4 if kind == "ddgan" else 20
    model = fastddgan.from_preset(kind, "tiny", schedule=T, amp="fp16")
    states = {}
    for i, (name, scaler) in enumerate(model.grad_scalers.items()):
        scaler.load_state_dict({**scaler.state_dict(), "scale": 2.0 ** (5 + i), "_growth_tracker": 7 + i})
        states[name] = scaler.state_dict()
    path = tmp_path / "fp16.pt"
    fastddgan.save(model, path)
    state = checkpoint.read(path)
    assert state["grad_scalers"] == states
    fresh = fastddgan.from_preset(kind, "tiny", schedule=T, amp="fp16")
    checkpoint.restore(fresh, state)
    assert {name: s.state_dict() for name, s in fresh.grad_scalers.items()} == states
    fastddgan.save(fastddgan.from_preset(kind, "tiny", schedule=T), tmp_path / "fp32.pt")
    state = checkpoint.read(tmp_path / "fp32.pt")
    assert state["grad_scalers"] == {}
    resumed = fastddgan.from_preset(kind, "tiny", schedule=T, amp="fp16")
    checkpoint.restore(resumed, state)
    assert {s.get_scale() for s in resumed.grad_scalers.values()} == {2.0**16}
    assert not fastddgan.load(path).grad_scalers[next(iter(states))].is_enabled()  # how it runs is not saved


def test_round_trip(trained, tmp_path):
    path = tmp_path / "run" / "ckpt.pt"
    fastddgan.save(trained, path, extra={"epoch": 3})
    assert os.listdir(path.parent) == ["ckpt.pt"]  # no temporary file left behind
    loaded = fastddgan.load(path)
    assert isinstance(loaded, fastddgan.DDGAN) and loaded.T == 2 and loaded.step == 2
    assert loaded.loss.name == "hellinger" and loaded.num_classes == 10 and loaded.lazy_reg == 2
    assert loaded.checkpoint_extra == {"epoch": 3}
    for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    assert loaded.opt_g.state_dict()["state"].keys() == trained.opt_g.state_dict()["state"].keys()
    torch.testing.assert_close(loaded.schedulers[0].get_last_lr(), trained.schedulers[0].get_last_lr())
    y = torch.arange(3)
    expect = fastddgan.sample(trained, n=3, seed=5, class_labels=y)
    torch.testing.assert_close(fastddgan.sample(loaded, n=3, seed=5, class_labels=y), expect)
    torch.testing.assert_close(fastddgan.sample(str(path), n=3, seed=5, class_labels=y), expect)


def test_checkpoints_hold_the_training_state_dict(trained, tmp_path):
    """A checkpoint's optimizers / schedulers / grad_scalers / step entries are the model's TrainState.state_dict()
    (the layout of version-1 files, so files written before the TrainState load unchanged), and a fresh model's
    training state loaded from them continues identically: the next step gives the same weights."""
    fastddgan.save(trained, tmp_path / "c.pt")
    state = checkpoint.read(tmp_path / "c.pt")
    saved = trained.train_state.state_dict()
    assert set(saved) == {"optimizers", "schedulers", "grad_scalers", "step"}
    assert state["step"] == saved["step"] == 2 and state["schedulers"] == saved["schedulers"]
    assert state["optimizers"]["g"]["param_groups"] == saved["optimizers"]["g"]["param_groups"]
    fresh = fastddgan.from_preset("ddgan", "tiny", schedule=2, num_classes=10, loss="hellinger", lazy_reg=2,
                                  total_steps=100)
    fresh.load_state_dict(state["model"])
    fresh.train_state.load_state_dict(state)
    assert fresh.step == 2 and fresh.train_state.learning_rate == trained.train_state.learning_rate
    x0, y = torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([5, 6, 7, 8])
    for model in (trained, fresh):
        torch.manual_seed(1)
        model.train_step(x0, y, generator=torch.Generator().manual_seed(2))
    for a, b in zip(trained.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)


def test_ddpm_round_trip(tmp_path):
    model = fastddgan.from_preset("ddpm", "toy2d", schedule=50, prediction="v", p_uncond=0.0)
    model.train_step(torch.randn(8, 2))
    fastddgan.save(model, tmp_path / "ddpm.pt")
    loaded = fastddgan.load(tmp_path / "ddpm.pt")
    assert isinstance(loaded, fastddgan.DDPM) and loaded.prediction == "v" and loaded.T == 50
    assert loaded.sample_shape == (2,) and not loaded.clip_x0
    torch.testing.assert_close(fastddgan.sample(loaded, T=5, n=4, seed=1), fastddgan.sample(model, T=5, n=4, seed=1))


def test_failed_write_keeps_the_previous_checkpoint(trained, tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    fastddgan.save(trained, path)
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        fastddgan.save(trained, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.pt"]


def test_foreign_files_and_hand_built_models(tmp_path, trained):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="is not a fastddgan checkpoint"):
        fastddgan.load(other)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="is not a fastddgan checkpoint"):
        fastddgan.sample(str(text))
    with pytest.raises(FileNotFoundError, match="path: no checkpoint at"):
        fastddgan.load(tmp_path / "missing.pt")
    fastddgan.save(trained, tmp_path / "ok.pt")
    torch.save({**torch.load(tmp_path / "ok.pt", weights_only=True), "version": 99}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="has checkpoint version 99; this fastddgan reads version 1"):
        fastddgan.load(tmp_path / "future.pt")
    hand_built = fastddgan.DDGAN(fastddgan.models.build("tiny", "generator"),
                                 fastddgan.models.build("tiny", "discriminator"), 2)
    with pytest.raises(ValueError, match="only models built with fastddgan.checkpoint.from_preset"):
        fastddgan.save(hand_built, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="kind: expected one of"):
        fastddgan.from_preset("gan", "tiny")


def test_adam_is_fused_where_torch_has_it_and_a_checkpoint_does_not_choose_the_implementation(tmp_path):
    """The families' Adam is fused where this torch supports it (CPU from torch 2.4), else torch's default; a
    checkpoint written by the other implementation (another torch, another device) loads its moments and steps but
    keeps this process's implementation, and training goes on."""
    from fastddgan.train_state import adam

    model = checkpoint.from_preset("ddgan", "toy2d", 4, r1_gamma=0.05)
    supported = tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4)
    assert all(bool(opt.param_groups[0]["fused"]) == supported for opt in (model.opt_g, model.opt_d))
    x0 = fastddgan.data.toy2d("ring8", 64, generator=torch.Generator().manual_seed(0))
    model.train_step(x0)
    state = model.train_state.state_dict()
    for group in state["optimizers"]["g"]["param_groups"]:
        group.update(fused=None, foreach=True)  # as the default implementation saves it
    other = checkpoint.from_preset("ddgan", "toy2d", 4, r1_gamma=0.05)
    other.train_state.load_state_dict(state)
    assert bool(other.opt_g.param_groups[0]["fused"]) == supported and other.opt_g.param_groups[0]["foreach"] is None
    assert int(other.opt_g.state[next(iter(other.generator.parameters()))]["step"]) == 1
    other.train_step(x0)
    assert bool(adam([torch.nn.Parameter(torch.zeros(3))], lr=1e-3).param_groups[0]["fused"]) == supported
