"""Reliability: no code runs from a weights file, crafted checkpoint configs are refused before any allocation, no
lost or mixed work in a run folder (ranking by the stored step, the folder lock, stale temporary files, unreadable
checkpoints under --resume auto), the mode of atomically written files, and evaluate's --out checked first."""

import copy
import json
import os
import subprocess
import sys

import pytest
import torch

import fastddgan
from fastddgan import evaluate as E
from fastddgan._io import atomic_write, check_writable, load_tensors
from fastddgan.export import export
from fastddgan.metrics import WEIGHTS_ENV, WEIGHTS_FILE, InceptionMetrics, InceptionWeightsInvalid, load_weights
from fastddgan.train import main as train
from fastddgan.train.run_folder import RunFolder

TOY = ["--dataset", "ring8", "--log-every", "5", "--sample-every", "0", "--batch-size", "64", "--sample-n", "200"]


def _one_line(text: str) -> str:
    text = text.strip()
    assert text and "\n" not in text, text
    return text


class _WritesMarker:
    """Unpickling this creates the file at ``path``: a stand-in for a weights file that runs code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---------------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_write_gives_the_mode_of_the_umask(tmp_path, umask):
    before = os.umask(umask)
    try:
        atomic_write(tmp_path / "f.bin", lambda f: f.write(b"x"))
    finally:
        os.umask(before)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["f.bin"]


def test_load_tensors_never_runs_code_and_says_why_in_one_line(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "x": _WritesMarker(marker)}, evil)
    with pytest.raises(ValueError, match="could run code") as err:
        load_tensors(evil)
    _one_line(str(err.value))
    assert not marker.exists()
    (tmp_path / "zero.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty") as err:
        load_tensors(tmp_path / "zero.pt")
    _one_line(str(err.value))


# ---------------------------------------------------------------------------------------------- Inception weights
def test_inception_weights_that_would_run_code_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": _WritesMarker(marker)}, evil)
    with pytest.raises(InceptionWeightsInvalid, match="--inception-weights") as err:
        InceptionMetrics(weights_path=evil, device="cpu")
    assert "could run code" in _one_line(str(err.value)) and str(evil) in str(err.value)
    monkeypatch.setenv(WEIGHTS_ENV, str(evil))
    with pytest.raises(InceptionWeightsInvalid, match=r"\$" + WEIGHTS_ENV):
        InceptionMetrics(device="cpu")
    monkeypatch.delenv(WEIGHTS_ENV)
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(evil.read_bytes())
    with pytest.raises(InceptionWeightsInvalid, match="torch.hub's cache"):
        InceptionMetrics(device="cpu")
    assert not marker.exists()


def test_empty_or_foreign_inception_weights_are_one_line(tmp_path):
    zero = tmp_path / "zero.pth"
    zero.write_bytes(b"")
    with pytest.raises(InceptionWeightsInvalid, match="--inception-weights.*empty") as err:
        InceptionMetrics(weights_path=zero, device="cpu")
    _one_line(str(err.value))
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(InceptionWeightsInvalid, match="state dict of tensors"):
        load_weights(tmp_path / "list.pth", "--inception-weights")
    pytest.importorskip("torch_fidelity")
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(InceptionWeightsInvalid, match="does not hold the Inception-v3 weights") as err:
        InceptionMetrics(weights_path=tmp_path / "other.pth", device="cpu")
    _one_line(str(err.value))


# ---------------------------------------------------------------------------------------------- crafted configs
@pytest.fixture
def toy_state(tmp_path):
    path = tmp_path / "good.pt"
    fastddgan.save(fastddgan.from_preset("ddgan", "toy2d"), path)
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["preset"]["generator"].update(hidden=200000), "parameters; at most"),
    (lambda c: c["preset"]["discriminator"].update(num_layers=10**9), "num_layers: expected an integer <= 256"),
    (lambda c: c["preset"]["generator"].update(evil=1), r"unknown generator option\(s\) \['evil'\]"),
    (lambda c: c["options"].update(evil=1), r"unknown ddgan option\(s\) \['evil'\]"),
    (lambda c: c.update(num_classes=10**12), "parameters; at most"),
    (lambda c: c["options"].update(sample_shape=(10**9,)), "sample_shape"),
    (lambda c: c["preset"].update(channels=10**9), "channels: expected an integer <= 64"),
    (lambda c: c.pop("options"), "expected a dict with"),
])
def test_a_crafted_checkpoint_config_is_refused_before_any_allocation(toy_state, tmp_path, change, message,
                                                                     capsys):
    state = copy.deepcopy(toy_state)
    change(state["config"])
    path = tmp_path / "crafted.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match=message) as err:
        fastddgan.load(path)
    assert str(path) in _one_line(str(err.value))
    assert E.main([str(path), "--n", "10"]) == 2
    _one_line(capsys.readouterr().err)


def test_a_crafted_export_config_is_refused(toy_state, tmp_path):
    folder = tmp_path / "export"
    export(fastddgan.load(tmp_path / "good.pt"), folder)
    meta = json.loads((folder / "config.json").read_text())
    meta["config"]["preset"]["denoiser"]["hidden"] = 10**7
    meta["config"]["preset"]["generator"]["hidden"] = 10**7
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="parameters; at most"):
        fastddgan.load(folder)


def test_presets_are_within_the_limits():
    for name in fastddgan.models.PRESETS:
        fastddgan.models.presets.check_config(fastddgan.models.preset(name), num_classes=10)
