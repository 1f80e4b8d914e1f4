"""Reliability: no code runs from a weights file, crafted checkpoint configs are refused before any allocation, no
lost or mixed work in a run folder (ranking by the stored step, the folder lock, a real concurrent writer and a
kill -9, stale temporary files, unreadable checkpoints under --resume auto), the mode of atomically written files,
and evaluate's --out checked first; no crash or hang on a full disk or absurd lengths; nothing silently wrong (bad
numbers refused up front, each non-finite recovery halving the learning rates again, non-finite weights refused, no
NaN in JSON, evaluate's flags, schedules, sampling arguments, reference statistics keyed on the images)."""

import copy
import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import fastddgan
from fastddgan import Schedule
from fastddgan import checkpoint as C
from fastddgan import evaluate as E
from fastddgan._io import atomic_write, check_writable, load_tensors
from fastddgan.data import load_dataset
from fastddgan.export import export
from fastddgan.export import main as export_main
from fastddgan.metrics import WEIGHTS_ENV, WEIGHTS_FILE, InceptionMetrics, InceptionWeightsInvalid, load_weights
from fastddgan.train import main as train
from fastddgan.train.batches import Batches
from fastddgan.train.config import ConfigError, parse, resolve
from fastddgan.train.loop import Trainer
from fastddgan.train.progress import Progress, duration, long_run_warning
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


def test_evaluate_refuses_bad_inception_weights_before_sampling(mnist_ckpt, tmp_path, monkeypatch, capsys):
    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled before the weights were checked")

    monkeypatch.setattr(E, "timed_sample", no_sampling)
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pth"
    torch.save({"x": _WritesMarker(marker)}, evil)
    zero = tmp_path / "zero.pth"
    zero.write_bytes(b"")
    for weights in (evil, zero):
        rc = E.main([str(mnist_ckpt), "--metrics", "fid", "--n", "10", "--cache-dir", str(tmp_path),
                     "--inception-weights", str(weights)])
        err = _one_line(capsys.readouterr().err)
        assert rc == 2 and "--inception-weights" in err and str(weights) in err
    assert not marker.exists()


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


# ---------------------------------------------------------------------------------------------- the run folder
class _Killed(BaseException):
    """Stands in for a kill -9 right after a checkpoint was written and the older ones pruned."""


def _train(out, steps, *extra):
    return train(TOY + ["--out", str(out), "--steps", str(steps), "--ckpt-every", "10", *extra])


def test_extending_a_finished_run_resumes_from_the_newest_checkpoint_after_a_kill(tmp_path, monkeypatch, capsys):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for out in (straight, killed):
        assert _train(out, 30) == 0
    assert _train(straight, 60, "--resume", "auto") == 0
    real_prune = RunFolder.prune

    def prune_then_die(self, keep, written):
        real_prune(self, keep, written)
        if os.path.basename(written) == "ckpt-00000040.pt":
            raise _Killed

    monkeypatch.setattr(RunFolder, "prune", prune_then_die)
    with pytest.raises(_Killed):
        _train(killed, 60, "--resume", "auto", "--keep", "1")
    monkeypatch.setattr(RunFolder, "prune", real_prune)
    checkpoints = killed / "checkpoints"
    # final.pt (step 30) ranks below the newer periodic checkpoint; pruning kept the one just written
    assert [os.path.basename(p) for _, p in RunFolder(str(killed)).list_checkpoints()] == \
        ["ckpt-00000040.pt", "final.pt"]
    capsys.readouterr()
    assert _train(killed, 60, "--resume", "auto") == 0
    assert f"resumed from {checkpoints / 'ckpt-00000040.pt'} at step 40" in capsys.readouterr().out
    a = torch.load(straight / "checkpoints" / "final.pt", weights_only=True)
    b = torch.load(checkpoints / "final.pt", weights_only=True)
    assert a["step"] == b["step"] == 60
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_prune_never_removes_the_checkpoint_just_written(tmp_path):
    run = RunFolder(str(tmp_path))
    os.makedirs(run.checkpoints)
    for step in (10, 15, 20):
        open(run.checkpoint_path(step), "wb").close()  # unreadable: ranked by the step in the name
    run.prune(1, run.checkpoint_path(15))
    assert sorted(os.listdir(run.checkpoints)) == ["ckpt-00000015.pt", "ckpt-00000020.pt"]


def test_a_second_training_into_the_same_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time\n"
         "f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); f.write('4242\\n'); f.flush()\n"
         "print('locked', flush=True); time.sleep(120)", str(out / ".lock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert _train(out, 10) == 2
        err = _one_line(capsys.readouterr().err)
        assert "--out: another training is writing to" in err and "4242" in err
        assert not (out / "config.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert _train(out, 10) == 0  # the lock went with the process that held it
    assert _train(out, 20, "--resume", "auto") == 0  # and this process released its own at the end


def test_a_concurrent_writer_is_refused_and_a_kill_9_loses_nothing(tmp_path, capsys):
    """Two real trainings into one --out: while the first runs (a child process), the second gets one line and exit
    2 and changes nothing; the first is killed with SIGKILL mid-run (no handler runs: the flock goes with the
    process), and --resume auto then ends with exactly the weights, optimiser states and step of an uninterrupted
    run."""
    import time

    steps = ["--steps", "300", "--ckpt-every", "20"]
    straight, out = tmp_path / "straight", tmp_path / "killed"
    assert train(TOY + ["--out", str(straight), *steps]) == 0
    first = subprocess.Popen([sys.executable, "-m", "fastddgan.train", *TOY, "--out", str(out), *steps],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None and \
                not (out / "checkpoints" / "ckpt-00000020.pt").exists():
            time.sleep(0.01)
        assert first.poll() is None, "the first run ended before the test: " + first.stderr.read().decode()
        config = (out / "config.json").read_text()
        capsys.readouterr()
        assert train(TOY + ["--out", str(out), *steps, "--resume", "auto"]) == 2  # the concurrent writer
        err = _one_line(capsys.readouterr().err)
        assert f"--out: another training is writing to {out} (process {first.pid} holds" in err
        assert (out / "config.json").read_text() == config
        assert first.poll() is None, "the first run ended before it could be killed"
        first.kill()  # SIGKILL
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert not (out / "checkpoints" / "final.pt").exists()
    assert train(TOY + ["--out", str(out), *steps, "--resume", "auto"]) == 0
    assert "resumed from" in capsys.readouterr().out
    a = torch.load(straight / "checkpoints" / "final.pt", weights_only=True)
    b = torch.load(out / "checkpoints" / "final.pt", weights_only=True)
    assert a["step"] == b["step"] == 300 and a["schedulers"] == b["schedulers"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for name, opt in a["optimizers"].items():
        for i, state in opt["state"].items():
            for k, v in state.items():
                assert torch.equal(v, b["optimizers"][name]["state"][i][k]), (name, i, k)


def test_stale_temporary_checkpoints_are_removed_at_the_next_start(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, 10) == 0
    checkpoints = out / "checkpoints"
    for name in (".tmp-abc123.pt", ".tmp-def456.pt"):
        (checkpoints / name).write_bytes(b"half a checkpoint")
    (checkpoints / ".tmp-other.json").write_text("{}")  # not a checkpoint's: left alone
    (checkpoints / "notes.pt").write_text("mine")
    assert _train(out, 20, "--resume", "auto") == 0
    assert "removed 2 temporary checkpoint files left by a killed run" in capsys.readouterr().out
    assert sorted(os.listdir(checkpoints)) == [".tmp-other.json", "final.pt", "notes.pt"]


def test_resume_auto_with_only_unreadable_checkpoints_fails(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, 20) == 0
    for name in os.listdir(out / "checkpoints"):
        path = out / "checkpoints" / name
        path.write_bytes(path.read_bytes()[:100])
    capsys.readouterr()
    assert _train(out, 30, "--resume", "auto") == 2
    err = capsys.readouterr().err.strip().splitlines()  # a warning for each file skipped, then the error
    assert len(err) == 3 and all(line.startswith("warning: skipping unreadable checkpoint") for line in err[:2])
    assert err[-1].startswith("python -m fastddgan.train: error: --resume auto: no readable checkpoint in")
    assert json.loads((out / "config.json").read_text())["steps"] == 20  # nothing was restarted
    assert _train(tmp_path / "fresh", 5, "--resume", "auto") == 0  # an empty folder is a fresh run, as before


# ---------------------------------------------------------------------------------------------- evaluate --out
def test_evaluate_checks_out_before_sampling(tmp_path, monkeypatch, capsys):
    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled before --out was checked")

    monkeypatch.setattr(E, "timed_sample", no_sampling)
    ckpt = tmp_path / "ckpt.pt"
    fastddgan.save(fastddgan.from_preset("ddgan", "toy2d"), ckpt)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in (blocker / "eval.json", tmp_path):
        assert E.main([str(ckpt), "--dataset", "ring8", "--n", "10", "--out", str(out)]) == 2
        assert "--out: " in _one_line(capsys.readouterr().err)
    with pytest.raises(ValueError, match="--out: cannot write"):
        check_writable(blocker / "x.json", "--out")
    check_writable(tmp_path / "new" / "x.json", "--out")
    assert os.listdir(tmp_path / "new") == []


# ---------------------------------------------------------------------------------------------- schedules, sampling
@pytest.mark.parametrize("betas, message", [
    ([0.1, float("nan")], r"betas: expected finite numbers in \(0, 1\), got betas\[1\] = nan"),
    ([float("inf")], r"betas: expected finite numbers in \(0, 1\), got betas\[0\] = inf"),
    ([0.5, 1.0], r"got betas\[1\] = 1.0"),
    ([0.0, 0.1], r"got betas\[0\] = 0.0"),
    ([1e-20, 0.1], r"betas\[0\] = 1e-20 is too small: 1 - betas\[0\] rounds to 1"),
    ([0.9] * 1000, "alphas_cumprod .* underflows to 0 at t = 323"),
])
def test_betas_that_would_make_nonfinite_tables_are_refused(betas, message):
    with pytest.raises(ValueError, match=message) as err:
        Schedule.from_betas(betas)
    _one_line(str(err.value))
    with pytest.raises(ValueError, match="max_beta"):
        Schedule.cosine(10, max_beta=1.0)


def test_sample_refuses_nan_guidance_and_seeds_that_are_not_integers():
    model = fastddgan.from_preset("ddgan", "toy2d", num_classes=3)
    labels = torch.arange(3)
    with pytest.raises(ValueError, match="guidance: expected a finite number, got nan"):
        fastddgan.sample(model, n=3, seed=0, class_labels=labels, guidance=float("nan"))
    for seed in (1.5, "7", True):
        with pytest.raises(ValueError, match=f"seed: expected an integer \\(or None\\), got {seed!r}"):
            fastddgan.sample(model, n=3, seed=seed)
    assert torch.equal(fastddgan.sample(model, n=3, seed=np.int64(2)), fastddgan.sample(model, n=3, seed=2))


# ---------------------------------------------------------------------------------------------- non-finite weights
def test_nonfinite_weights_are_refused_by_load_sample_evaluate_and_export(tmp_path, capsys):
    good = tmp_path / "good.pt"
    fastddgan.save(fastddgan.from_preset("ddgan", "toy2d"), good)
    state = torch.load(good, weights_only=True)
    key = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][key].view(-1)[0] = float("nan")
    bad = tmp_path / "nan.pt"
    torch.save(state, bad)
    with pytest.raises(ValueError, match=f"holds non-finite weights \\(NaN or inf in 1 tensor: {key}\\)") as err:
        fastddgan.load(bad)
    assert str(bad) in _one_line(str(err.value))
    with pytest.raises(ValueError, match="non-finite weights"):
        fastddgan.sample(bad, n=4, seed=0)
    assert E.main([str(bad), "--dataset", "ring8", "--n", "10"]) == 2
    assert "non-finite weights" in _one_line(capsys.readouterr().err)
    assert export_main([str(bad), str(tmp_path / "exported")]) == 2
    assert "non-finite weights" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "exported").exists()

    model = fastddgan.load(good)
    folder = tmp_path / "export"
    export(model, folder)
    import safetensors.torch as st

    weights = st.load_file(folder / "network.safetensors")
    next(iter(weights.values())).view(-1)[0] = float("inf")
    (folder / "network.safetensors").write_bytes(st.save(weights))
    with pytest.raises(ValueError, match="network.safetensors' holds non-finite weights"):
        fastddgan.load(folder)
    with torch.no_grad():
        next(model.ema.module.parameters()).view(-1)[0] = float("nan")
    for call in (lambda: export(model, tmp_path / "x"), lambda: E.evaluate(model, dataset="ring8", n=10)):
        with pytest.raises(ValueError, match="model: the EMA network holds non-finite weights"):
            call()


# ---------------------------------------------------------------------------------------------- evaluate's arguments
def test_evaluate_bounds_n_and_refuses_dropped_flags(tmp_path, capsys):
    ckpt = tmp_path / "ckpt.pt"
    fastddgan.save(fastddgan.from_preset("ddgan", "toy2d"), ckpt, extra={"train_config": {"dataset": "ring8"}})
    for flags, message in [
            (["--n", "100000000000"], "--n: expected an integer in [2, 10,000,000], got 100000000000"),
            (["--ddim"], "--ddim: DDIM steps are for DDPM models; this is a DDGAN"),
            (["--metrics", ","], "--metrics: expected a comma-separated list of"),
            (["--guidance", "nan"], "guidance: expected a finite number, got nan")]:
        assert E.main([str(ckpt), *flags]) == 2, flags
        assert message in _one_line(capsys.readouterr().err)
    assert E.main([str(ckpt), "--dataset", "grid25", "--n", "100"]) == 0
    assert _one_line(capsys.readouterr().err) == ("warning: --dataset grid25 is not the data set the model was "
                                                  "trained on (ring8); the metrics compare it with grid25")


# ---------------------------------------------------------------------------------------------- reference statistics
def test_cached_reference_statistics_are_keyed_on_the_images(tmp_path):
    from PIL import Image

    folder, cache = tmp_path / "images", str(tmp_path / "cache")
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    calls = []

    def featurize(batch):
        calls.append(tuple(batch.shape))
        return batch.flatten(1)[:, :3]

    def stats(**options):
        return E.real_stats(load_dataset(f"folder:{folder}", **{"image_size": 8, **options}), "f", featurize, cache)

    first = stats()
    assert len(calls) == 1 and np.array_equal(stats()[0], first[0]) and len(calls) == 1  # the second: cached
    stats(image_size=4)
    stats(channels=1)
    assert calls[1:] == [(4, 3, 4, 4), (4, 1, 8, 8)]
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / "4.png")
    assert not np.array_equal(stats()[0], first[0]) and calls[-1] == (5, 3, 8, 8)
    (folder / "4.png").unlink()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(folder / "0.png")  # same name, new contents
    assert not np.array_equal(stats()[0], first[0]) and len(calls) == 5
    assert len(os.listdir(cache)) == 5


# ---------------------------------------------------------------------------------------------- a full disk
def test_disk_full_while_checkpointing_is_one_line_after_pruning_first(tmp_path, monkeypatch, capsys):
    real_write = C.atomic_write
    folder_when_full = []

    def full_at_step_30(path, write):
        if os.path.basename(path) == "ckpt-00000030.pt":
            folder_when_full.append(sorted(os.listdir(os.path.dirname(path))))
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, write)

    monkeypatch.setattr(C, "atomic_write", full_at_step_30)
    out = tmp_path / "run"
    assert _train(out, 40, "--keep", "2") == 1
    err = _one_line(capsys.readouterr().err)
    assert f"error: disk full writing {out / 'checkpoints' / 'ckpt-00000030.pt'} (need ~" in err
    assert err.endswith("free some space, then continue with --resume auto")
    assert folder_when_full == [["ckpt-00000020.pt"]]  # --keep 2: ckpt-10 went before the write, not after
    monkeypatch.setattr(C, "atomic_write", real_write)  # space freed
    assert _train(out, 40, "--keep", "2", "--resume", "auto") == 0
    assert f"resumed from {out / 'checkpoints' / 'ckpt-00000020.pt'} at step 20" in capsys.readouterr().out


def test_checkpoint_save_says_disk_full_for_torchs_runtime_error(tmp_path, monkeypatch):
    model = fastddgan.from_preset("ddgan", "toy2d")

    def torch_write_fails(path, write):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0: PytorchStreamWriter "
                           "failed writing file data/0: file write failed")

    monkeypatch.setattr(C, "atomic_write", torch_write_fails)
    monkeypatch.setattr(C, "_free_bytes", lambda path: 1000)
    with pytest.raises(C.DiskFullError) as err:
        fastddgan.save(model, tmp_path / "ck.pt")
    assert err.value.errno == errno.ENOSPC
    assert _one_line(str(err.value)).startswith(f"disk full writing {tmp_path / 'ck.pt'} (need ~")
    assert str(err.value).endswith(" MB, 0.001 MB free)")
    monkeypatch.setattr(C, "_free_bytes", lambda path: 10**13)
    with pytest.raises(RuntimeError, match="file write failed"):  # room enough: not a full disk, torch's error
        fastddgan.save(model, tmp_path / "ck.pt")


# ---------------------------------------------------------------------------------------------- lengths, numbers
def test_steps_are_bounded_and_time_estimates_never_crash(tmp_path, capsys):
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"dataset": "ring8", "steps": 1e23}))
    assert train(["--config", str(cfg), "--out", str(tmp_path / "x")]) == 2
    assert "--steps: expected an integer in [1, 1000000000], got 99999999999999991611392" in \
        _one_line(capsys.readouterr().err)
    image = {"kind": "image", "channels": 1, "image_size": 28, "num_classes": 10, "size": 5000}
    for epochs in ("inf", "nan", "-1"):
        with pytest.raises(ConfigError, match=f"--epochs: expected a positive number, got {epochs}"):
            resolve(parse(["--dataset", "mnist5k", "--out", "x", "--epochs", epochs]), image)
    with pytest.raises(ConfigError, match=r"--epochs: 1e\+300 epochs are \d+ steps; at most 1000000000 steps"):
        resolve(parse(["--dataset", "mnist5k", "--out", "x", "--epochs", "1e300"]), image)
    assert [duration(s) for s in (30, 600, 7200, 3e5, 1e23, float("inf"), float("nan"))] == \
        ["30 s", "10 min", "2.0 h", "3.5 days", "1.2e+18 days", "unknown time", "unknown time"]
    Progress(10**9, 0, True).show({"step": 1, "it_per_s": 0.0, "loss_d": 1.0}, 10**9)  # a zero speed
    assert "eta 1.2e+13 days" in capsys.readouterr().out
    Progress(10, 0, True).show({"step": 1, "it_per_s": 1.0, "loss_d": 1.0, "divergence": -1.0,
                                "divergence_t0": -1.2, "divergence_t1": -0.8}, 10)
    line = capsys.readouterr().out  # the per-step bounds stay in metrics.jsonl
    assert "divergence -1 |" in line and "divergence_t" not in line


def test_long_cpu_run_warning_suggests_only_what_would_help():
    """The over-2-hours warning of an image run on a CPU: quiet below the limit (and before a speed is measured);
    a CPU preset is not told to pick a CPU preset (session 23: the study's mnist-cpu runs were), a GPU preset is."""
    assert long_run_warning(7000, "mnist", None, 64, 6000) is None
    assert long_run_warning(float("nan"), "mnist", None, 64, 6000) is None
    gpu = long_run_warning(10_000, "mnist", None, 64, 6000)
    assert "about 2.8 h" in gpu and "'mnist' networks (sized for a GPU)" in gpu and \
        "a smaller --preset (mnist-cpu, tiny), fewer --steps" in gpu
    for preset in ("mnist-cpu", "tiny"):
        cpu = long_run_warning(10_000, preset, None, 64, 6000)
        assert f"'{preset}' networks (sized for a CPU) at --batch-size 64 for 6000 steps" in cpu
        assert "--preset" not in cpu and "fewer --steps, or train on a GPU" in cpu
    widened = long_run_warning(10_000, "mnist-cpu", "generator.ch=32", 64, 6000)  # a CPU preset grown by --net
    assert "with --net generator.ch=32 at" in widened and "smaller --preset" not in widened
    assert "choose the 'mnist-cpu' networks without --net, fewer --steps" in widened


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"], "--batch-size: expected an integer >= 1, got 0"),
    (["--sample-n", "0"], "--sample-n: expected an integer >= 1, got 0"),
    (["--sample-steps", "0", "--model", "ddpm"], "--sample-steps: expected an integer >= 1, got 0"),
    (["--sample-steps", "0"], "--sample-steps: expected an integer >= 1, got 0"),
    (["--r1-gamma", "-100"], "--r1-gamma: expected a finite number >= 0, got -100.0"),
    (["--r1-gamma", "inf"], "--r1-gamma: expected a finite number >= 0, got inf"),
    (["--gp-lambda", "nan", "--loss", "wasserstein"], "--gp-lambda: expected a finite number >= 0, got nan"),
    (["--drift", "-1", "--loss", "tv"], "--drift: expected a finite number >= 0, got -1.0"),
    (["--lr-g", "inf"], "--lr-g: expected a finite number > 0, got inf"),
    (["--lr-g", "-1"], "--lr-g: expected a finite number > 0, got -1.0"),
    (["--lr-d", "nan"], "--lr-d: expected a finite number > 0, got nan"),
    (["--lr-d", "0"], "--lr-d: expected a finite number > 0, got 0.0"),
    (["--lr", "inf", "--model", "ddpm"], "--lr: expected a finite number > 0, got inf"),
    (["--ema-decay", "nan"], "--ema-decay: expected a number in [0, 1), got nan"),
    (["--steps", "10000000000"], "--steps: expected an integer in [1, 1000000000], got 10000000000"),
])
def test_bad_numbers_are_one_line_and_exit_2(tmp_path, capsys, flags, message):
    assert train(["--dataset", "ring8", "--out", str(tmp_path / "x"), *flags]) == 2
    assert message in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------------------- non-finite training
def _poison_batches(monkeypatch, times):
    """Batches.get returns NaN data the first ``times[step]`` times each step is asked for."""
    real_get, left = Batches.get, dict(times)

    def get(self, step):
        x, y = real_get(self, step)
        if left.get(step, 0) > 0:
            left[step] -= 1
            x = x * float("nan")
        return x, y

    monkeypatch.setattr(Batches, "get", get)


@pytest.mark.parametrize("times, lr_decay", [
    ({6: 2, 7: 2}, "none"),  # both recoveries go back to ckpt-6, written before the first
    ({6: 1, 7: 1, 12: 1, 13: 1}, "cosine"),  # the second goes back to ckpt-12, written with the halved rates
])
def test_each_nonfinite_recovery_halves_the_learning_rates_again(tmp_path, monkeypatch, times, lr_decay):
    _poison_batches(monkeypatch, times)
    real_recover, rates = Trainer._recover, []

    def recover(self):
        real_recover(self)
        schedulers = self.state.schedulers
        rates.append([lr for s in schedulers for lr in s.base_lrs] if schedulers else
                     [g["lr"] for opt in self.state.optimizers.values() for g in opt.param_groups])

    monkeypatch.setattr(Trainer, "_recover", recover)
    out = tmp_path / "run"
    assert _train(out, 20, "--ckpt-every", "3", "--max-nonfinite", "2", "--lr-decay", lr_decay) == 0
    assert rates == [[5e-4, 5e-4], [2.5e-4, 2.5e-4]]  # --lr-g and --lr-d are 1e-3 for 2-D data
    final = torch.load(out / "checkpoints" / "final.pt", weights_only=True)
    assert final["extra"]["recoveries"] == 2
    events = [r for r in RunFolder(str(out)).read_metrics() if r.get("event") == "recovered"]
    assert [e["lr_scale"] for e in events] == [0.5, 0.25]


def test_training_that_ends_with_nonfinite_weights_does_not_claim_a_checkpoint(tmp_path, monkeypatch, capsys):
    real_step = fastddgan.DDGAN.train_step

    def step(self, *args, **kwargs):
        metrics = real_step(self, *args, **kwargs)
        if self.step == 11:
            with torch.no_grad():
                next(self.generator.parameters()).fill_(float("inf"))
        return metrics

    monkeypatch.setattr(fastddgan.DDGAN, "train_step", step)
    out = tmp_path / "run"
    assert _train(out, 12) == 3
    captured = capsys.readouterr()
    assert "done:" not in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("warning: weights not finite at step 12")
    assert err[1].startswith("python -m fastddgan.train: stopped: the weights are not finite at step 12, so "
                             f"{out / 'checkpoints' / 'final.pt'} was not written (the newest checkpoint: "
                             f"{out / 'checkpoints' / 'ckpt-00000010.pt'} at step 10)")
    assert os.listdir(out / "checkpoints") == ["ckpt-00000010.pt"] and not (out / "export").exists()


# ---------------------------------------------------------------------------------------------- no NaN in JSON
def _strict_json(text):
    def refuse(constant):
        raise AssertionError(f"{constant} in JSON output")
    return json.loads(text, parse_constant=refuse)


def test_json_outputs_write_null_for_non_finite_numbers(tmp_path, monkeypatch, capsys):
    run = RunFolder(str(tmp_path / "run"))
    os.makedirs(run.out)
    run.log({"step": 5, "loss_d": float("nan"), "lr": float("inf"), "losses": [1.0, float("-inf")]})
    assert _strict_json((tmp_path / "run" / "metrics.jsonl").read_text()) == \
        {"step": 5, "loss_d": None, "lr": None, "losses": [1.0, None]}
    ckpt = tmp_path / "ckpt.pt"
    fastddgan.save(fastddgan.from_preset("ddgan", "toy2d"), ckpt)
    monkeypatch.setattr(E.M, "toy2d_metrics", lambda x, name, generator=None: {
        "num_modes": 8, "modes_covered": 8, "high_quality": float("nan"), "sliced_wasserstein": float("inf")})
    out = tmp_path / "eval.json"
    assert E.main([str(ckpt), "--dataset", "ring8", "--n", "10", "--out", str(out)]) == 0
    record = _strict_json(out.read_text())
    assert record["metrics"]["high_quality"] is None and record["metrics"]["sliced_wasserstein"] is None


def test_a_device_without_index_gets_the_current_one(monkeypatch):
    """"cuda" becomes "cuda:<current>" (torch.device("cuda") != torch.device("cuda:0"): fastddgan.sample(model,
    device="cuda") failed for a model on cuda:0 on the first GPU run); other devices are kept as given."""
    from fastddgan import _checks

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    assert _checks.device("cuda") == torch.device("cuda", 3)
    assert _checks.device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert _checks.device("cpu") == torch.device("cpu")


def test_progress_messages_go_above_the_bar(capsys):
    """A message said while the tqdm bar runs (an in-training score, a checkpoint warning) goes through tqdm's
    write, which clears the bar and redraws it after the line, instead of being printed into the bar's line."""
    import io
    from tqdm import tqdm

    screen = io.StringIO()
    progress = Progress(100, 0, False)
    progress.bar = tqdm(total=100, file=screen, ncols=60)
    progress.update(3)
    progress.write("step 1000: FID-dom 12.3", screen)
    text = screen.getvalue()
    line = text.index("step 1000: FID-dom 12.3")
    assert text[line - 1] == "\r" and text[line:].startswith("step 1000: FID-dom 12.3\n")  # cleared bar, then it
    assert "3/100" in text[line:]  # the bar drawn again below it
    progress.close()
    Progress(100, 0, False).write("no bar", sys.stdout)
    assert capsys.readouterr().out == "no bar\n"
