"""The flat-discriminator warning: on the logged R1 terms of the committed digit runs (flat discriminators found,
live ones left alone), said once, kept across a resume, and wired into the trainer's log and stderr."""

import json
import os

import pytest

from fastddgan.train import main
from fastddgan.train import loop
from fastddgan.train.discriminator_watch import FlatDiscriminatorWatch

RUNS = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "results", "study-mnist5k", "runs")
FLAT = ["ddgan-js-T8-seed0", "ddgan-js-T10-seed0", "ddgan-hellinger-T10-seed0"]  # divergence at chance, r1 -> 0
ALIVE = ["ddgan-js-T1-seed0", "ddgan-js-T2-seed0", "ddgan-js-T3-seed0", "ddgan-js-T4-seed0", "ddgan-js-T4-seed1",
         "ddgan-js-T4-seed2", "ddgan-js-T5-seed0", "ddgan-hellinger-T3-seed0", "ddgan-hellinger-T4-seed2",
         "ddgan-hellinger-T5-seed0", "ddgan-rkl-T4-seed1", "ddgan-tv-T4-seed2"]


def _records(run):
    path = os.path.join(RUNS, run, "metrics.jsonl")
    if not os.path.isfile(path):
        pytest.skip(f"{path} is not in this checkout")
    with open(path) as f:
        return [r for r in map(json.loads, f) if "event" not in r]


def _first_warning(records, watch=None):
    watch = watch or FlatDiscriminatorWatch()
    said = [(r["step"], text) for r in records if (text := watch.update(r)) is not None]
    assert len(said) <= 1, "the warning is said once"
    return said[0] if said else (None, None)


@pytest.mark.parametrize("run", FLAT)
def test_the_study_runs_whose_discriminator_went_flat_are_flagged_early(run):
    step, text = _first_warning(_records(run))
    assert step is not None and 900 <= step <= 1600, step
    assert f"at step {step}" in text and "--net discriminator.ch=32" in text and "--lr-d" in text


@pytest.mark.parametrize("run", ALIVE)
def test_live_discriminators_are_left_alone(run):
    records = _records(run)
    assert len(records) >= 50 and all("r1" in r for r in records)
    assert _first_warning(records) == (None, None)


def test_records_without_r1_and_windows_not_yet_full_say_nothing():
    watch = FlatDiscriminatorWatch(span=500)
    # DDPM logs no r1; nor does Wasserstein (its gradient penalty, gp, holds the input gradient's norm near 1)
    assert all(watch.update({"step": s, "loss": 0.1, "gp": 1e-9}) is None for s in range(100, 3000, 100))
    # one record per 100 steps, falling 1e4-fold: the window is full from step 500, so nothing is said before
    said = [s for s in range(100, 1500, 100) if watch.update({"step": s, "r1": 10.0 ** (-s / 100)})]
    assert said and said[0] > 500


def test_the_warning_is_not_repeated_after_a_resume_and_the_peak_survives_one():
    flat = _records("ddgan-js-T10-seed0")
    step, _ = _first_warning(flat)
    before = [r for r in flat if r["step"] <= step]
    # resumed after the warning was given (its event is in metrics.jsonl): never again
    watch = FlatDiscriminatorWatch()
    watch.resume(before + [{"event": "discriminator_flat", "step": step}])
    assert _first_warning([r for r in flat if r["step"] > step], watch) == (None, None)
    # resumed just before it: the replayed past keeps the window and the peak, so the warning comes at the same
    # step, with the same numbers as in the uninterrupted run
    uninterrupted = FlatDiscriminatorWatch()
    assert [uninterrupted.update(r) is not None for r in before][-1]
    watch = FlatDiscriminatorWatch()
    watch.resume(before[:-1])
    assert watch.update(before[-1]) is not None
    assert watch.event() == uninterrupted.event() and watch.event()["r1_peak_step"] < step - 500


def test_a_recovery_rewinds_the_window_and_peak_to_its_checkpoint():
    """Records after the checkpoint a recovery went back to are an abandoned stretch: they leave the window and the
    peak, so the retrained stretch is judged against the run's past only."""
    rising = [{"step": s, "r1": 1.0} for s in range(100, 1100, 100)]
    abandoned = [{"step": s, "r1": 1e3} for s in range(1100, 2100, 100)]  # a spike that the recovery discards
    watch = FlatDiscriminatorWatch()
    for record in rising + abandoned:
        watch.update(record)
    assert watch.peak[0] == pytest.approx(1e3)
    watch.rewind(rising + abandoned + [{"event": "recovered", "step": 1000}], 1000)
    assert watch.peak[0] == pytest.approx(1.0) and max(step for step, _ in watch.window) == 1000
    # against the spike r1 = 1e-1 would be 1/10,000 of the peak; against the past it is 1/10: nothing said
    assert all(watch.update({"step": s, "r1": 0.1}) is None for s in range(1100, 2100, 100))
    # a warning said in the abandoned stretch stays said
    watch.fired = True
    watch.rewind(rising, 1000)
    assert watch.fired and all(watch.update({"step": s, "r1": 1e-6}) is None for s in range(1100, 2100, 100))


@pytest.mark.parametrize("kwargs, name", [({"fall": 0.0}, "fall"), ({"fall": 1.0}, "fall"), ({"span": 0}, "span")])
def test_bad_settings_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        FlatDiscriminatorWatch(**kwargs)


def test_the_trainer_logs_the_event_and_warns_once(tmp_path, monkeypatch, capsys):
    """A discriminator under a huge R1 weight goes flat; the watch (short window for an 80-step run) says so."""

    class ShortWatch(FlatDiscriminatorWatch):
        def __init__(self):
            super().__init__(fall=0.2, span=10)

    monkeypatch.setattr(loop, "FlatDiscriminatorWatch", ShortWatch)
    out = tmp_path / "flat"
    rc = main(["--dataset", "ring8", "--log-every", "5", "--sample-every", "0", "--batch-size", "64",
               "--sample-n", "200", "--steps", "80", "--r1-gamma", "1000", "--out", str(out)])
    assert rc == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    events = [r for r in records if r.get("event") == "discriminator_flat"]
    assert len(events) == 1 and events[0]["r1_window_mean"] < 0.2 * events[0]["r1_peak"]
    assert capsys.readouterr().err.count("the discriminator has gone flat") == 1
