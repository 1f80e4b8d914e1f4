"""One clear line for every bad input (issue 13, "Unclear messages"): each case below gives one line that names the
argument (or the file and what is wrong with it), exit status 2 from the command-line tools, and no traceback: an
--out that cannot be written, a FASTDDGAN_BACKEND that cannot run, a binary --config, checkpoints that unpickle but
are malformed (in load, sample, evaluate, --resume and export), foreign pickles, a zero-byte --inception-weights,
--device cuda without a GPU, a --seed beyond 64 bits, sample(generator=5), --train-classifier on a folder, and
argparse's own errors."""

import copy
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import fastddgan
from fastddgan import evaluate as E
from fastddgan import ops
from fastddgan._io import load_tensors
from fastddgan.export import main as export_main
from fastddgan.metrics import load_weights
from fastddgan.metrics.classifier import DomainClassifier
from fastddgan.ops import _backends
from fastddgan.train import main as train

TOY = ["--dataset", "ring8", "--sample-every", "0", "--batch-size", "32", "--sample-n", "100"]
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA device")


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def _error(capsys) -> str:
    return _one_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def run_ckpt(tmp_path_factory):
    """A checkpoint written by python -m fastddgan.train (so it holds a training config)."""
    out = tmp_path_factory.mktemp("run") / "run"
    assert train(TOY + ["--out", str(out), "--steps", "2"]) == 0
    return out / "checkpoints" / "final.pt"


# ---------------------------------------------------------------------------------------------- --out
def test_an_out_that_cannot_be_written_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    assert train(TOY + ["--out", str(a_file / "run"), "--steps", "2"]) == 2
    assert _error(capsys).startswith(f"python -m fastddgan.train: error: --out: cannot write to '{a_file / 'run'}'")
    ckpt = tmp_path / "ckpt.pt"
    fastddgan.save(fastddgan.from_preset("ddgan", "toy2d"), ckpt)
    assert export_main([str(ckpt), str(a_file)]) == 2
    assert f"error: folder: '{a_file}' is a file; expected a folder" in _error(capsys)
    assert export_main([str(ckpt), str(a_file / "export")]) == 2
    assert f"error: folder: cannot write '{a_file / 'export' / 'config.json'}'" in _error(capsys)
    if os.geteuid() == 0:
        return  # root writes into read-only folders
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    assert train(TOY + ["--out", str(read_only / "run"), "--steps", "2"]) == 2
    err = _error(capsys)
    assert "--out: cannot write to" in err and "Permission denied" in err
    assert E.main([str(ckpt), "--n", "10", "--out", str(read_only / "eval.json")]) == 2
    assert "--out: cannot write" in _error(capsys)
    assert export_main([str(ckpt), str(read_only / "export")]) == 2
    assert "folder: cannot write" in _error(capsys)


# ---------------------------------------------------------------------------------------------- FASTDDGAN_BACKEND
@NO_GPU
def test_a_forced_backend_that_cannot_run_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    # this context's choice as FASTDDGAN_BACKEND=cuda makes it at import (tests/conftest.py restores the automatic one)
    _backends._choice.set(_backends.Choice("cuda", "FASTDDGAN_BACKEND"))
    message = ("FASTDDGAN_BACKEND: fastddgan backend 'cuda' was requested but the cuda backend runs on CUDA tensors "
               "only, got cpu; unset it (or set it to auto) for the automatic choice")
    assert train(TOY + ["--out", str(tmp_path / "run"), "--steps", "2"]) == 2
    assert _error(capsys) == f"python -m fastddgan.train: error: {message}"
    assert not (tmp_path / "run").exists()
    ckpt = tmp_path / "ckpt.pt"
    fastddgan.save(fastddgan.from_preset("ddgan", "toy2d"), ckpt)
    assert E.main([str(ckpt), "--dataset", "ring8", "--n", "10"]) == 2
    assert _error(capsys) == f"python -m fastddgan.evaluate: error: {message}"
    with pytest.raises(ops.BackendUnavailable, match=re.escape(message)):  # a RuntimeError, and a ValueError
        ops.q_sample(torch.zeros(2, 2), 0, fastddgan.Schedule.ddgan(4))


def test_a_bad_backend_variable_is_one_line_not_an_import_traceback():
    env = {**os.environ, "FASTDDGAN_BACKEND": "fast"}
    out = subprocess.run([sys.executable, "-m", "fastddgan", "--no-check"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 2
    assert _one_line(out.stderr) == ("python -m fastddgan: error: FASTDDGAN_BACKEND: expected one of ('torch', "
                                     "'cpp', 'cuda', 'triton') or 'auto', got 'fast'")


# ---------------------------------------------------------------------------------------------- --config
def test_a_config_that_is_not_text_or_not_yaml_is_one_line(tmp_path, run_ckpt, capsys):
    binary = tmp_path / "run.yaml"
    binary.write_bytes(bytes(range(256)))
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: ring8\nsteps: [1,\n  - 2\n")  # YAML's own message spans lines
    for path, message in [(binary, "is not a text file (byte 128 is not UTF-8); expected a YAML or JSON file"),
                          (run_ckpt, "is not a text file"),
                          (broken, "(ParserError: while parsing a flow node expected the node content")]:
        assert train(["--config", str(path), "--out", str(tmp_path / "x")]) == 2
        err = _error(capsys)
        assert err.startswith("python -m fastddgan.train: error: --config: ") and str(path) in err and message in err
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------------------- malformed checkpoints
class _Foreign:
    """A class no checkpoint holds: pickling an instance stores a global that weights_only loading refuses."""


def _malformed(state):
    """Variants of a valid checkpoint that unpickle but are not usable, and the message each gets."""
    first = next(iter(state["model"]))
    variants = {
        "schedule without timesteps": (lambda s: s["schedule"].pop("timesteps"), "'schedule' is not a dict of"),
        "schedule an int": (lambda s: s.update(schedule=5), "'schedule' is not a dict of"),
        "betas a string": (lambda s: s["schedule"].update(betas="abc"), "'schedule' is not a dict of"),
        "timesteps too short": (lambda s: s["schedule"].update(timesteps=torch.tensor([0])),
                                r"holds an invalid schedule \(ValueError: timesteps: expected shape"),
        "model an int": (lambda s: s.update(model=5), "'model' is of type int; expected a state dict"),
        "model of other keys": (lambda s: s.update(model={"w": torch.zeros(2)}),
                                r"does not fit the model its config describes \(RuntimeError: .*Missing key"),
        "a weight of another shape": (lambda s: s["model"].update({first: torch.zeros(1)}),
                                      r"does not fit the model .*size mismatch"),
        "no optimizers": (lambda s: s.pop("optimizers"), r"does not fit the model .*KeyError: missing 'optimizers'"),
        "optimizer an int": (lambda s: s["optimizers"].update(g=5), "'optimizers' / 'schedulers' do not hold"),
        "step a string": (lambda s: s.update(step="abc"), "'step' is of type str; expected int"),
        "extra an int": (lambda s: s.update(extra=5), "'extra' is of type int; expected dict"),
        "schedulers an int": (lambda s: s.update(schedulers=5), "'schedulers' is of type int; expected list"),
        "kind unknown": (lambda s: s.update(kind="vae"), r"'kind' is 'vae'; expected one of \('ddgan', 'ddpm'\)"),
        "loss an int": (lambda s: s["config"]["options"].update(loss=5),
                        r"invalid model config \(TypeError: loss: expected an objective name"),
        "training config an int": (lambda s: s["extra"].update(train_config=5),
                                   "the training config in 'extra' is of type int"),
    }
    for name, (change, message) in variants.items():
        broken = copy.deepcopy(state)
        change(broken)
        yield name, broken, message


def test_malformed_checkpoints_are_one_line_in_load_sample_evaluate_resume_and_export(run_ckpt, tmp_path, capsys):
    state = torch.load(run_ckpt, weights_only=True)
    for i, (name, broken, message) in enumerate(_malformed(state)):
        path = tmp_path / f"broken-{i}.pt"
        torch.save(broken, path)
        for call in (lambda: fastddgan.load(path), lambda: fastddgan.sample(path, n=2, seed=0)):
            with pytest.raises(ValueError, match=message) as err:
                call()
            assert str(path) in _one_line(str(err.value)), name
        assert E.main([str(path), "--dataset", "ring8", "--n", "10"]) == 2, name
        assert re.search(message, _error(capsys)), name
        assert export_main([str(path), str(tmp_path / f"export-{i}")]) == 2, name
        assert re.search(message, _error(capsys)) and not (tmp_path / f"export-{i}").exists(), name
        rc = train(TOY + ["--out", str(tmp_path / f"run-{i}"), "--steps", "4", "--resume", str(path)])
        if name in ("timesteps too short", "loss an int"):  # --resume builds the model from the run's flags
            assert rc == 0, name
            capsys.readouterr()
            continue
        assert rc == 2, name
        err = _error(capsys)
        assert err.startswith("python -m fastddgan.train: error: --resume: ") and str(path) in err, (name, err)
        if "training config" not in name and "loss" not in name:  # resume checks its own record first
            assert re.search(message, err), (name, err)


def test_a_malformed_training_record_is_one_line_on_resume(run_ckpt, tmp_path, capsys):
    state = torch.load(run_ckpt, weights_only=True)
    for i, change in enumerate([lambda s: s["extra"]["train_config"].pop("batch_size"),
                                lambda s: s["extra"]["train_config"].update(world_size="2"),
                                lambda s: s["extra"].update(recoveries=-1)]):
        broken = copy.deepcopy(state)
        change(broken)
        torch.save(broken, tmp_path / "broken.pt")
        assert train(TOY + ["--out", str(tmp_path / f"run-{i}"), "--steps", "4", "--resume",
                            str(tmp_path / "broken.pt")]) == 2
        assert f"--resume: {tmp_path / 'broken.pt'} holds a malformed training record (" in _error(capsys)


# ---------------------------------------------------------------------------------------------- foreign pickles
def test_foreign_pickles_are_refused_in_one_line_that_names_the_global(tmp_path, monkeypatch, capsys):
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "fastddgan", "x": _Foreign(), "a": np.zeros(3)}, foreign)
    reason = f"refused: Unsupported global: GLOBAL {_Foreign.__module__}._Foreign was not an allowed global"
    calls = [load_tensors, fastddgan.load, DomainClassifier.load, lambda p: load_weights(p, "--inception-weights")]
    for call in calls:
        with pytest.raises(ValueError) as err:
            call(foreign)
        assert reason in _one_line(str(err.value)) and "could run code" in str(err.value)
    monkeypatch.setattr(E, "timed_sample", lambda *a, **k: pytest.fail("sampled before the files were checked"))
    assert E.main([str(foreign), "--dataset", "ring8", "--n", "10"]) == 2
    assert reason in _error(capsys)
    assert export_main([str(foreign), str(tmp_path / "export")]) == 2
    assert reason in _error(capsys)


def test_a_malformed_or_oversized_classifier_file_is_one_line(tmp_path):
    good = {"format": "fastddgan.metrics.DomainClassifier", "version": 1,
            "config": {"in_channels": 1, "num_classes": 10, "widths": [4, 4, 4], "feature_dim": 4}}
    for change, message in [(lambda s: s["config"].update(widths=[10**7, 4, 4]),
                             r"config: 'widths' must be an integer in \[1, 4096\], got 10000000"),
                            (lambda s: s.update(config=[1]), "config: expected a dict, got list"),
                            (lambda s: None, "KeyError: missing 'state_dict'")]:
        state = copy.deepcopy(good)
        change(state)
        torch.save(state, tmp_path / "clf.pt")
        with pytest.raises(ValueError, match=message) as err:
            DomainClassifier.load(tmp_path / "clf.pt")
        assert "is a malformed fastddgan domain classifier" in _one_line(str(err.value))


# ---------------------------------------------------------------------------------------------- evaluate's inputs
def test_a_zero_byte_inception_weights_file_is_one_line_with_the_automatic_metrics(mnist_ckpt, tmp_path, capsys):
    zero = tmp_path / "zero.pth"
    zero.write_bytes(b"")
    for metrics in (["--metrics", "auto"], []):
        assert E.main([str(mnist_ckpt), "--n", "10", "--cache-dir", str(tmp_path), "--inception-weights", str(zero),
                       *metrics]) == 2
        assert f"--inception-weights (weights_path): cannot use '{zero}' as the Inception weights: it is empty" in \
            _error(capsys)


@NO_GPU
def test_device_cuda_without_a_gpu_is_one_line(run_ckpt, tmp_path, capsys):
    message = "--device: cuda was asked for but torch sees no CUDA device"
    assert E.main([str(run_ckpt), "--n", "10", "--device", "cuda"]) == 2
    assert _error(capsys) == f"python -m fastddgan.evaluate: error: {message}"
    assert E.main(["--train-classifier", "--dataset", "mnist5k", "--device", "cuda", "--cache-dir",
                   str(tmp_path)]) == 2
    assert _error(capsys) == f"python -m fastddgan.evaluate: error: {message}"
    assert train(TOY + ["--out", str(tmp_path / "run"), "--device", "cuda"]) == 2
    assert _error(capsys) == f"python -m fastddgan.train: error: {message}"


@pytest.mark.parametrize("seed", [2**63, -2**63 - 1, 10**23])
def test_a_seed_beyond_64_bits_is_one_line(run_ckpt, tmp_path, capsys, seed):
    message = f"--seed: expected an integer in [-2**63, 2**63 - 1], got {seed}"
    assert E.main([str(run_ckpt), "--n", "10", "--seed", str(seed)]) == 2
    assert _error(capsys) == f"python -m fastddgan.evaluate: error: {message}"
    assert train(TOY + ["--out", str(tmp_path / "run"), "--steps", "2", "--seed", str(seed)]) == 2
    assert _error(capsys) == f"python -m fastddgan.train: error: {message}"
    assert not (tmp_path / "run").exists()


def test_the_64_bit_seed_limits_work(run_ckpt, tmp_path):
    for seed in (2**63 - 1, -2**63):
        assert E.main([str(run_ckpt), "--n", "10", "--seed", str(seed)]) == 0
    assert train(TOY + ["--out", str(tmp_path / "run"), "--steps", "2", "--seed", str(-2**63)]) == 0


def test_sample_refuses_a_generator_that_is_not_one():
    model = fastddgan.from_preset("ddgan", "toy2d")
    for generator, seed in [(5, None), ("cpu", None), (5, 3)]:
        with pytest.raises(TypeError, match=f"generator: expected a torch.Generator or None, got "
                                            f"{type(generator).__name__}") as err:
            fastddgan.sample(model, n=2, seed=seed, generator=generator)
        _one_line(str(err.value))
    assert fastddgan.sample(model, n=2, generator=torch.Generator().manual_seed(1)).shape == (2, 2)


def _labelled_folder(root, size=8, per_class=10):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    return f"folder:{root}"


def test_train_classifier_on_a_folder_asks_for_a_flag_evaluate_has(tmp_path, capsys):
    dataset = _labelled_folder(tmp_path / "images")
    cache = str(tmp_path / "cache")
    assert E.main(["--train-classifier", "--dataset", dataset, "--epochs", "1", "--cache-dir", cache]) == 2
    assert _error(capsys) == (f"python -m fastddgan.evaluate: error: --image-size: required for --dataset {dataset} "
                              f"(the side of the square images, e.g. 64)")
    assert E.main(["--train-classifier", "--dataset", dataset, "--epochs", "1", "--cache-dir", cache,
                   "--image-size", "8", "--channels", "1"]) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    clf = DomainClassifier.load(E.classifier_path(cache, dataset))
    assert clf.config["in_channels"] == 1 and clf.config["image_size"] == [8, 8]
    assert train(["--dataset", dataset, "--out", str(tmp_path / "run")]) == 2  # the same flag, the same line
    assert _error(capsys) == (f"python -m fastddgan.train: error: --image-size: required for --dataset {dataset} "
                              f"(the side of the square images, e.g. 64)")


def test_argparse_errors_are_one_line(capsys):
    for main, argv, message in [(train, ["--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
                                (train, ["--loss", "kl"], "argument --loss: invalid choice: 'kl'"),
                                (E.main, ["--n", "x"], "argument --n: invalid int value: 'x'"),
                                (E.main, ["--channels", "2"], "argument --channels: invalid choice: 2"),
                                (export_main, [], "the following arguments are required: checkpoint, folder")]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        line = _error(capsys)
        assert message in line and line.endswith("--help)"), line


@pytest.mark.parametrize("flags, message", [
    (["--T", "1000000000"], "--T: expected an integer in [1, 100000], got 1000000000"),  # minutes of tables, then OOM
    (["--threads", "100000"], "--threads: at most"),  # OpenMP crashed (segfault)
    (["--threads", str(10**25)], "--threads: at most"),
    (["--batch-size", str(10**12)], "--batch-size: at most 1,000,000, got 1000000000000"),  # failed allocating
    (["--sample-n", str(10**12)], "--sample-n: at most 1,000,000, got 1000000000000"),  # ... at the end of the run
    (["--gp-lambda", "0"], "--gp-lambda: only for --loss wasserstein, got --loss js"),  # was get_loss's TypeError
    (["--n-critic", "2", "--loss", "tv"], "--n-critic: only for --loss wasserstein, got --loss tv"),
    (["--n-critic", "0", "--loss", "wasserstein"], "--n-critic: expected an integer >= 1, got 0"),  # "--preset"
    (["--nz", "0"], "--nz: expected an integer >= 1, got 0"),
    (["--net", "generator.hidden"], "--net: expected ROLE.KEY=VALUE (e.g. generator.ch=24), got 'generator.hidden'"),
    (["--net", "critic.hidden=64"], "--net: the role of 'critic.hidden=64' is not one of ('generator', "),
    (["--net", "generator.hidden=wide"], "--net: the value of 'generator.hidden=wide' is not JSON"),
    (["--net", "generator.width=64"], "--preset toy2d --net generator.width=64: cannot build it for this data "
                                      "(preset: unknown generator option(s) ['width']"),
    (["--net", "generator.num_layers=100000"], "--preset toy2d --net generator.num_layers=100000: cannot build it"),
    (["--net", "generator.hidden=\"64\""], "--preset toy2d --net generator.hidden=\"64\": cannot build it"),
])
def test_sizes_that_would_crash_mid_run_are_refused_up_front(tmp_path, capsys, flags, message):
    """Found by tests/test_fuzz.py and by hand: values that passed the checks and then crashed (or were blamed on
    the preset) are refused before anything is written."""
    assert train(TOY + ["--out", str(tmp_path / "run"), *flags]) == 2
    assert message in _error(capsys)
    assert not (tmp_path / "run").exists()
