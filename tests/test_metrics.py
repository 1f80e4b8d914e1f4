"""fastddgan.metrics: the Fréchet distance against closed forms and against torchmetrics / torch-fidelity, streaming
statistics, Inception plumbing (weights lookup, IS, features with a random-weights file), the domain classifier and
the exact 2-D metrics."""

import math
import os

import numpy as np
import pytest
import torch

from fastddgan.data import TOY2D, toy2d
from fastddgan.metrics import (FID_DOM, IS_DOM, WEIGHTS_ENV, WEIGHTS_FILE, WEIGHTS_URL, DomainClassifier,
                               InceptionMetrics, InceptionWeightsNotFound, RunningStats, domain_metrics,
                               feature_stats, fid_dom, frechet_distance, high_quality_fraction, inception_score,
                               is_dom, load_stats, mmd, mode_coverage, resolve_weights, save_stats, sliced_wasserstein,
                               toy2d_metrics, train_classifier)
from fastddgan.metrics.inception import to_uint8
from fastddgan.metrics.toy2d import _w1_sorted


def _spd(d, rng, scale=1.0):
    a = rng.standard_normal((d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


# ---------------------------------------------------------------- Fréchet distance


def test_fid_of_a_set_against_itself_is_zero():
    x = np.random.default_rng(0).standard_normal((500, 16)) * 3 + 1
    mu, sigma = feature_stats(x)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_feature_stats_are_float64_unbiased():
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(1))
    mu, sigma = feature_stats(x)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64 and sigma.shape == (5, 5)
    np.testing.assert_allclose(mu, x.double().mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x.double().numpy(), rowvar=False), rtol=1e-12, atol=1e-15)


def test_closed_form_for_diagonal_and_commuting_covariances():
    rng = np.random.default_rng(2)
    d = 6
    a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    exact = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(exact, rel=1e-12)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))       # same eigenvectors: the same distance
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(exact, rel=1e-10)
    # singular covariances (rank-deficient, as with fewer samples than dimensions): still exact, no NaN
    a[:2] = 0.0
    exact = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu1, np.diag(b)) == pytest.approx(exact, rel=1e-12)


def test_fid_of_gaussian_samples_approaches_the_closed_form():
    rng = np.random.default_rng(3)
    d, n = 8, 20000
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d) * 0.5
    s1, s2 = _spd(d, rng), _spd(d, rng, 2.0)
    exact = frechet_distance(mu1, s1, mu2, s2)
    x = rng.multivariate_normal(mu1, s1, n)
    y = rng.multivariate_normal(mu2, s2, n)
    est = frechet_distance(*feature_stats(x), *feature_stats(y))
    assert exact > 1.0
    assert est == pytest.approx(exact, rel=0.02)


def test_frechet_distance_matches_torchmetrics_and_torch_fidelity():
    pytest.importorskip("torch_fidelity")
    pytest.importorskip("torchmetrics")
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torchmetrics.image.fid import _compute_fid

    g = torch.Generator().manual_seed(4)
    x = torch.randn(400, 64, generator=g).double().abs()          # nonnegative, like pooled ReLU features
    y = (torch.randn(400, 64, generator=g).double() * 1.3 + 0.2).abs()
    (m1, s1), (m2, s2) = feature_stats(x), feature_stats(y)
    ours = frechet_distance(m1, s1, m2, s2)
    tm = float(_compute_fid(torch.from_numpy(m1), torch.from_numpy(s1), torch.from_numpy(m2), torch.from_numpy(s2)))
    st1, st2 = fid_features_to_statistics(x), fid_features_to_statistics(y)
    np.testing.assert_allclose(st1["mu"], m1, rtol=1e-12)
    np.testing.assert_allclose(st1["sigma"], s1, rtol=1e-10, atol=1e-14)
    tf = fid_statistics_to_metric(st1, st2, verbose=False)["frechet_inception_distance"]
    assert ours > 1.0
    assert ours == pytest.approx(tm, rel=1e-6)
    assert ours == pytest.approx(tf, rel=1e-6)


def test_running_stats_equal_one_shot_stats():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1000, 12, generator=g, dtype=torch.float64) * 0.5 + 1000.0   # a large offset: no cancellation
    running = RunningStats()
    for lo, hi in ((0, 1), (1, 300), (300, 301), (301, 1000)):
        running.update(x[lo:hi].float() if lo == 0 else x[lo:hi])
    mu, sigma = feature_stats(torch.cat([x[:1].float().double(), x[1:]]))
    rmu, rsigma = running.compute()
    assert running.n == 1000 and running.dim == 12
    np.testing.assert_allclose(rmu, mu, rtol=1e-13)
    np.testing.assert_allclose(rsigma, sigma, rtol=1e-9, atol=1e-12)
    # a state dict restores the accumulation mid-stream
    part = RunningStats().update(x[:400])
    resumed = RunningStats()
    resumed.load_state_dict(part.state_dict())
    resumed.update(x[400:])
    np.testing.assert_allclose(resumed.compute()[1], feature_stats(x)[1], rtol=1e-9, atol=1e-12)


def test_stats_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    mu, sigma = rng.standard_normal(10), _spd(10, rng)
    path = tmp_path / "sub" / "real.npz"
    meta = {"extractor": "inception-v3-compat", "dataset": "mnist5k", "n": 5000}
    save_stats(path, mu, sigma, meta)
    save_stats(path, mu, sigma, meta)                   # overwriting in place is fine
    mu2, sigma2, meta2 = load_stats(path)
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sigma2, sigma)
    assert meta2 == meta
    assert sorted(os.listdir(path.parent)) == ["real.npz"]         # no temporary files left behind
    # pytorch-fid style files (only mu and sigma) load too
    np.savez(tmp_path / "foreign.npz", mu=mu, sigma=sigma)
    assert load_stats(tmp_path / "foreign.npz")[2] == {}


def test_fid_bad_input_names_the_argument(tmp_path):
    with pytest.raises(ValueError, match="features: expected at least 2 rows"):
        feature_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="features: expected a 2-D"):
        feature_stats(np.zeros(3))
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="mu2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="features: expected 4 columns"):
        RunningStats().update(torch.zeros(2, 4)).update(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="at least 2 samples"):
        RunningStats().update(torch.zeros(1, 4)).compute()
    with pytest.raises(FileNotFoundError, match="path"):
        load_stats(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="no 'mu' and 'sigma'"):
        load_stats(tmp_path / "other.npz")


# ---------------------------------------------------------------- Inception (weights, IS, features)


def _no_download(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)


def test_missing_inception_weights_raise_one_clear_error(monkeypatch, tmp_path):
    _no_download(monkeypatch, tmp_path)
    with pytest.raises(InceptionWeightsNotFound) as err:
        InceptionMetrics()
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    for part in (WEIGHTS_FILE, WEIGHTS_URL, "--inception-weights", WEIGHTS_ENV,
                 str(tmp_path / "torch_home" / "hub" / "checkpoints")):
        assert part in msg
    with pytest.raises(InceptionWeightsNotFound, match="weights_path"):
        InceptionMetrics(weights_path=tmp_path / "nowhere.pth")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nowhere.pth"))
    with pytest.raises(InceptionWeightsNotFound, match=WEIGHTS_ENV):
        InceptionMetrics()


def test_weights_download_only_when_asked(monkeypatch, tmp_path):
    _no_download(monkeypatch, tmp_path)
    calls = []
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda url, dst: calls.append((url, dst)))
    with pytest.raises(InceptionWeightsNotFound):
        resolve_weights()
    target = str(tmp_path / "torch_home" / "hub" / "checkpoints" / WEIGHTS_FILE)
    assert resolve_weights(download=True) == target and calls == [(WEIGHTS_URL, target)]
    given = tmp_path / "mine.pth"
    given.write_bytes(b"")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nowhere.pth"))
    assert resolve_weights(given) == str(given)                  # the argument comes first, then the variable
    assert len(calls) == 1


def _numpy_is(logits, splits):
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(p)
    scores = []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(0)
        scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(marginal)), 1))))
    return np.mean(scores), np.std(scores)


def test_inception_score_matches_closed_form():
    logits = torch.randn(1003, 20, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 3
    mean, std = inception_score(logits, splits=10, shuffle=False)
    ref_mean, ref_std = _numpy_is(logits.numpy(), 10)
    assert mean == pytest.approx(ref_mean, rel=1e-12) and std == pytest.approx(ref_std, rel=1e-9)
    # certain predictions spread evenly over C classes give C; identical predictions give 1
    certain = 50.0 * torch.eye(20).repeat(50, 1)
    assert inception_score(certain, splits=5, shuffle=False)[0] == pytest.approx(20.0, rel=1e-6)
    assert inception_score(torch.randn(1, 20).repeat(100, 1), splits=10)[0] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="splits"):
        inception_score(logits, splits=0)


def test_inception_score_matches_torch_fidelity():
    pytest.importorskip("torch_fidelity")
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.randn(1003, 20, generator=torch.Generator().manual_seed(7)) * 3
    lib = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    mean, std = inception_score(logits, splits=10)                  # the same shuffle and splits
    assert mean == pytest.approx(lib["inception_score_mean"], rel=1e-12)
    assert std == pytest.approx(lib["inception_score_std"], rel=1e-9)


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """A weights file for torch-fidelity's InceptionV3 with random (initial) weights: same architecture and keys."""
    pytest.importorskip("torch_fidelity")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    folder = tmp_path_factory.mktemp("inception")
    torch.save({}, folder / "empty.pth")
    mp = pytest.MonkeyPatch()
    mp.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, strict=True: None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = FeatureExtractorInceptionV3("random", ["2048"], feature_extractor_weights_path=folder / "empty.pth")
    mp.undo()
    torch.save(net.state_dict(), folder / WEIGHTS_FILE)
    return folder / WEIGHTS_FILE


def test_inception_features_of_grayscale_digits(random_inception_weights, monkeypatch, tmp_path):
    _no_download(monkeypatch, tmp_path)
    metrics = InceptionMetrics(weights_path=random_inception_weights, device="cpu", batch_size=2)
    gray = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(8)) * 2 - 1
    feats, logits = metrics.features(gray)                            # in two chunks: 2 + 1
    assert feats.shape == (3, 2048) and logits.shape == (3, 1008)
    assert feats.dtype == torch.float64 and logits.dtype == torch.float64
    assert bool(torch.isfinite(feats).all()) and float(feats.std()) > 0
    rgb_feats, rgb_logits = metrics.features(gray.repeat(1, 3, 1, 1))
    assert torch.equal(feats, rgb_feats) and torch.equal(logits, rgb_logits)
    # the same as the library's network on the PNG-style uint8 images
    u8 = ((gray + 1) * 127.5).round().to(torch.uint8).repeat(1, 3, 1, 1)
    lib_feats, lib_logits = metrics.net(u8)
    torch.testing.assert_close(feats, lib_feats.double(), rtol=0, atol=0)
    assert torch.equal(to_uint8(u8), u8) and torch.equal(to_uint8(gray), u8)
    # the weights file is found through the environment variable too
    monkeypatch.setenv(WEIGHTS_ENV, str(random_inception_weights))
    assert InceptionMetrics(device="cpu").weights_path == str(random_inception_weights)
    with pytest.raises(ValueError, match=r"images: expected an \(N, 1 or 3, H, W\)"):
        metrics.features(torch.zeros(2, 2, 28, 28))
    with pytest.raises(ValueError, match=r"images: expected float values in \[-1, 1\]"):
        metrics.features(torch.full((1, 1, 28, 28), 255.0))


# ---------------------------------------------------------------- domain classifier (FID-dom, IS-dom)


def _blobs(n, num_classes, size, generator):
    """Separable images: class k is a bright square at the k-th of ``num_classes`` places, on noise."""
    y = torch.arange(n) % num_classes
    x = -1 + 0.3 * torch.rand(n, 1, size, size, generator=generator)
    for k in range(num_classes):
        r, c = divmod(k, 2)
        x[y == k, :, 1 + 5 * r:5 + 5 * r, 1 + 5 * c:5 + 5 * c] = 1.0
    return x, y


@pytest.fixture
def one_thread():
    """Tiny networks gain nothing from a second thread, and lose a lot to it on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_domain_classifier_trains_saves_and_loads(tmp_path, one_thread):
    g = torch.Generator().manual_seed(9)
    x, y = _blobs(320, 4, 12, g)
    kwargs = dict(epochs=4, batch_size=16, lr=5e-3, augment=0, widths=(8, 8, 16), feature_dim=16, seed=1,
                  dataset="blobs")
    clf = train_classifier(x, y, 4, **kwargs)
    assert clf.heldout_accuracy >= 0.95 and clf.dataset == "blobs"
    assert clf.info["n_heldout"] == 32 and clf.info["n_train"] == 288
    same = train_classifier(x, y, 4, **kwargs)                     # one seed, one classifier
    assert torch.equal(same.features(x), clf.features(x))

    feats, logits = clf.features(x), clf.logits(x)
    assert feats.shape == (320, 16) and logits.shape == (320, 4) and feats.dtype == torch.float64
    uint8 = ((x + 1) * 127.5).round().to(torch.uint8)
    torch.testing.assert_close(clf.features(uint8), feats, atol=1e-2, rtol=0)

    path = tmp_path / "clf.pt"
    clf.save(path)
    loaded = DomainClassifier.load(path)
    assert torch.equal(loaded.features(x), feats) and torch.equal(loaded.logits(x), logits)
    assert loaded.dataset == "blobs" and loaded.heldout_accuracy == clf.heldout_accuracy
    assert loaded.config == clf.config

    stats_real = clf.stats(x, batch_size=100)
    assert fid_dom(feats, stats_real) == pytest.approx(0.0, abs=1e-8)
    one_class = x[y == 0]
    assert fid_dom(clf.features(one_class), stats_real) > 0.1
    assert is_dom(logits, splits=4)[0] > 2.0                          # balanced classes: up to 4
    assert is_dom(clf.logits(one_class), splits=4)[0] < 1.2                # one class: 1
    out = domain_metrics(clf, one_class, stats_real, splits=4)
    assert set(out) == {FID_DOM, IS_DOM, IS_DOM + "-std"} == {"FID-dom", "IS-dom", "IS-dom-std"}

    with pytest.raises(ValueError, match="images: expected 1 channel"):
        clf.features(torch.zeros(2, 3, 12, 12))
    with pytest.raises(ValueError, match="labels: expected values in"):
        train_classifier(x, y + 4, 4, **kwargs)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a fastddgan domain classifier"):
        DomainClassifier.load(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="path: no domain classifier at"):
        DomainClassifier.load(tmp_path / "missing.pt")
    state = torch.load(path, weights_only=True)
    torch.save({**state, "version": 99}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="has domain classifier version 99; this fastddgan reads version 1"):
        DomainClassifier.load(tmp_path / "future.pt")


def test_classifier_training_is_the_same_whatever_torch_thread_count(monkeypatch):
    """The classifier behind FID-dom trains on one thread by default, so its file (and every FID-dom scored with
    it) does not depend on the machine's core count; torch's count is restored after, also on an error."""
    from fastddgan.metrics import classifier_training

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(96, 1, 12, 12, generator=gen) * 2 - 1
    y = torch.arange(96) % 4
    kwargs = dict(epochs=1, batch_size=32, widths=(8, 16, 16), feature_dim=16, heldout=0.0)
    seen = []
    fit = classifier_training._fit
    monkeypatch.setattr(classifier_training, "_fit",
                        lambda *a, **k: (seen.append(torch.get_num_threads()), fit(*a, **k))[1])
    before = torch.get_num_threads()
    weights = []
    try:
        for outer in (2, 1):
            torch.set_num_threads(outer)
            weights.append(train_classifier(x, y, 4, **kwargs).net.state_dict())
            assert torch.get_num_threads() == outer
        torch.set_num_threads(2)
        train_classifier(x, y, 4, threads=None, **kwargs)
        assert seen == [1, 1, 2]               # threads=None: torch's count untouched
        monkeypatch.setattr(classifier_training, "_fit", lambda *a, **k: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            train_classifier(x, y, 4, **kwargs)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
    with pytest.raises(ValueError, match="threads: expected an integer >= 1 or None"):
        train_classifier(x, y, 4, threads=0, **kwargs)


def test_domain_classifier_takes_32x32_rgb():
    config = {"in_channels": 3, "image_size": [32, 32], "num_classes": 10, "widths": [32, 64, 128],
              "feature_dim": 128}
    clf = DomainClassifier(config)
    f, lg = clf.features_and_logits(torch.rand(5, 3, 32, 32) * 2 - 1)
    assert f.shape == (5, 128) and lg.shape == (5, 10)


# ---------------------------------------------------------------- 2-D metrics


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_true_mixture_samples_score_perfectly(name):
    g = torch.Generator().manual_seed(10)
    mix = TOY2D[name]
    x = mix.sample(4000, generator=g)
    assert mode_coverage(x, mix) == mix.num_modes
    assert high_quality_fraction(x, name) == pytest.approx(1 - math.exp(-4.5), abs=0.006)
    out = toy2d_metrics(x, name, generator=g)
    assert out["modes_covered"] == mix.num_modes and out["num_modes"] == mix.num_modes
    # the noise floor of n = 4000 (mode shares fluctuate) against a collapse onto one mode
    single = mix.centers[0] + mix.std * torch.randn(4000, 2, generator=g)
    collapsed = toy2d_metrics(single, name, generator=g)
    assert mode_coverage(single, mix) == collapsed["modes_covered"] == 1
    assert out["sliced_wasserstein"] < 0.2 < 1.0 < collapsed["sliced_wasserstein"]
    assert abs(out["mmd2"]) < 0.005 and collapsed["mmd2"] > 1.0


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_spread_and_offset_measure_the_modes_width_and_displacement(name):
    """spread = RMS distance of the within-3-std samples from their mode's mean over the data's: modes of c times the
    data's std score c (up to the cut at 3 data std, which trims wider modes: 1.3x -> 1.19), where high_quality
    rewards narrow modes (99.99% at 0.7x against the data's 98.9%)."""
    g = torch.Generator().manual_seed(3)
    mix = TOY2D[name]
    n = 100_000
    centres = mix.centers[torch.randint(0, mix.num_modes, (n,), generator=g)]
    noise = torch.randn(n, 2, generator=g)
    stats = {c: mix.mode_stats(centres + c * mix.std * noise) for c in (1.0, 0.7, 0.5, 1.3)}
    assert stats[1.0]["spread"] == pytest.approx(1.0, abs=0.01)
    # (almost nothing of these lies beyond 3 data std)
    assert stats[0.7]["spread"] == pytest.approx(0.7 * math.sqrt(2 / 1.8989), abs=0.01)
    assert stats[0.5]["spread"] == pytest.approx(0.5 * math.sqrt(2 / 1.8989), abs=0.01)
    assert 1.1 < stats[1.3]["spread"] < 1.3  # the cut at 3 std keeps it below 1.3
    assert stats[0.7]["high_quality"] > stats[1.0]["high_quality"]  # what high_quality alone would prefer
    assert all(abs(st["offset"]) < 0.03 for st in stats.values())  # centred modes
    # modes displaced by half a std: offset 0.5, spread unchanged (it is taken about each mode's own mean)
    shifted = mix.mode_stats(centres + 0.7 * mix.std * noise + torch.tensor([0.3, -0.4]) * mix.std)
    assert shifted["offset"] == pytest.approx(0.5, abs=0.02)
    assert shifted["spread"] == pytest.approx(stats[0.7]["spread"], abs=0.01)
    far = mix.centers.max() + 10.0  # nothing within 3 std: nothing to measure
    nothing = mix.mode_stats(torch.full((10, 2), float(far)))
    assert math.isnan(nothing["spread"]) and math.isnan(nothing["offset"])


def test_sliced_wasserstein_of_point_masses_is_the_mean_projected_distance():
    a, b = torch.tensor([[0.5, -1.0]]), torch.tensor([[2.0, 1.0]])
    g = torch.Generator().manual_seed(11)
    exact = 2 * float(torch.linalg.vector_norm(a - b)) / math.pi        # E_u |<a - b, u>| on the circle
    assert sliced_wasserstein(a.repeat(5, 1), b.repeat(5, 1), 20000, g) == pytest.approx(exact, rel=0.01)
    assert sliced_wasserstein(a.repeat(3, 1), b.repeat(7, 1), 20000, g) == pytest.approx(exact, rel=0.01)
    x = torch.randn(50, 2, generator=g)
    assert sliced_wasserstein(x, x[torch.randperm(50, generator=g)], 64, g) == pytest.approx(0.0, abs=1e-12)


def test_one_dimensional_w1_is_exact_for_unequal_sizes():
    wasserstein_distance = pytest.importorskip("scipy.stats").wasserstein_distance

    g = torch.Generator().manual_seed(12)
    x, y = torch.randn(37, 3, generator=g, dtype=torch.float64), torch.randn(53, 3, generator=g,
                                                                              dtype=torch.float64) + 0.4
    ours = _w1_sorted(x.sort(0).values, y.sort(0).values)
    for j in range(3):
        assert float(ours[j]) == pytest.approx(wasserstein_distance(x[:, j].numpy(), y[:, j].numpy()), rel=1e-12)


def test_mmd_unbiased_formula_and_sign():
    g = torch.Generator().manual_seed(13)
    x, y = torch.randn(40, 2, generator=g, dtype=torch.float64), torch.randn(30, 2, generator=g,
                                                                             dtype=torch.float64)
    bw = (0.5, 2.0)

    def k(a, b):
        d2 = torch.cdist(a, b) ** 2
        return sum(torch.exp(-d2 / (2 * s * s)) for s in bw)

    kxx, kyy = k(x, x), k(y, y)
    ref = ((kxx.sum() - kxx.trace()) / (40 * 39) + (kyy.sum() - kyy.trace()) / (30 * 29) - 2 * k(x, y).mean())
    assert mmd(x, y, bw) == pytest.approx(float(ref), rel=1e-10)
    # the same set twice is not two independent samples: exactly -2 (k(a, a) - mean K) / (n - 1), O(1/n)
    big = torch.randn(1500, 2, generator=g, dtype=torch.float64)
    kbb = sum(torch.exp(-torch.cdist(big, big) ** 2 / (2 * s * s)) for s in (0.05, 0.2, 1.0, 4.0))
    assert mmd(big, big) == pytest.approx(-2 * (4 - float(kbb.mean())) / 1499, rel=1e-9)
    assert abs(mmd(big, big)) < 8 / 1499
    assert mmd(big, big + 0.5) > 0.05
    with pytest.raises(ValueError, match="bandwidths"):
        mmd(x, y, (1.0, -1.0))


def test_toy2d_metrics_keys_and_bad_input():
    g = torch.Generator().manual_seed(14)
    out = toy2d_metrics(toy2d("swissroll", 500, g), "swissroll", n_ref=500, generator=g)
    assert set(out) == {"sliced_wasserstein", "mmd2"} and out["sliced_wasserstein"] < 0.2
    with pytest.raises(ValueError, match="name"):
        toy2d_metrics(torch.zeros(10, 2), "moons")
    with pytest.raises(ValueError, match=r"samples: expected an \(n >= 1, 2\)"):
        mode_coverage(torch.zeros(10, 3), "ring8")
    with pytest.raises(ValueError, match="mixture"):
        high_quality_fraction(torch.zeros(10, 2), "swissroll")


def test_label_accuracy_is_the_share_of_samples_classified_as_their_label():
    """Conditional samples drawn for labels 0..3 (25 each): the classifier puts 20 of the 0s, all 1s, none of the
    2s and 10 of the 3s in their class -> 55 / 100; bad shapes or labels are refused, naming the argument."""
    from fastddgan.metrics import label_accuracy

    labels = torch.arange(100) // 25
    predicted = labels.clone()
    predicted[:5] = 1          # five 0s read as 1s
    predicted[50:75] = 0       # every 2 read as a 0
    predicted[75:90] = 2       # fifteen 3s read as 2s
    logits = torch.nn.functional.one_hot(predicted, 4).float() * 3 - 1
    assert label_accuracy(logits, labels) == pytest.approx(0.55)
    assert label_accuracy(torch.nn.functional.one_hot(labels, 4).float(), labels) == 1.0
    with pytest.raises(ValueError, match="labels: expected 100 class indices in \\[0, 4\\)"):
        label_accuracy(logits, labels[:99])
    with pytest.raises(ValueError, match="labels"):
        label_accuracy(logits, labels.float())
    with pytest.raises(ValueError, match="labels"):
        label_accuracy(logits, labels + 1)  # a 4 among them
    with pytest.raises(ValueError, match="logits"):
        label_accuracy(torch.zeros(0, 4), labels[:0])


def test_class_coverage_counts_classes_with_half_a_fair_share():
    """4 classes, 100 predictions: 40/30/25/5 -> the 5% class is under half a uniform share (12.5%): 3 classes."""
    from fastddgan.metrics import class_coverage

    labels = torch.tensor([0] * 40 + [1] * 30 + [2] * 25 + [3] * 5)
    logits = torch.nn.functional.one_hot(labels, 4).float() * 5
    result = class_coverage(logits)
    assert result["classes"] == 3 and result["class-shares"] == [0.4, 0.3, 0.25, 0.05]
    assert result["class-min-share"] == pytest.approx(0.05)
    assert class_coverage(logits, min_share=0.05)["classes"] == 4
    assert class_coverage(torch.zeros(3, 10).index_fill_(1, torch.tensor([7]), 1.0))["classes"] == 1
    with pytest.raises(ValueError, match="logits"):
        class_coverage(torch.zeros(0, 10))


# ---------------------------------------------------------------- class-balanced FID-dom


def test_weighted_feature_stats_reduce_to_the_plain_and_repeated_rows():
    """Equal weights give feature_stats exactly, scaling the weights changes nothing, and the weighted mean of
    integer weights is the mean of the rows repeated that often."""
    from fastddgan.metrics import weighted_feature_stats

    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4))
    for got, want in zip(weighted_feature_stats(x, np.full(50, 3.0)), feature_stats(x)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    w = rng.integers(1, 4, 50).astype(float)
    mu_w, sigma_w = weighted_feature_stats(x, w)
    mu_s, sigma_s = weighted_feature_stats(x, 7.5 * w)
    np.testing.assert_allclose(mu_s, mu_w, rtol=1e-12)
    np.testing.assert_allclose(sigma_s, sigma_w, rtol=1e-12)
    np.testing.assert_allclose(mu_w, np.repeat(x, w.astype(int), axis=0).mean(0), rtol=1e-12)
    assert not np.allclose(sigma_w, feature_stats(x)[1])  # the weights matter
    with pytest.raises(ValueError, match="weights: expected shape"):
        weighted_feature_stats(x, np.ones(49))
    with pytest.raises(ValueError, match="weights: expected finite non-negative"):
        weighted_feature_stats(x, -np.ones(50))
    with pytest.raises(ValueError, match="at least 2 positive"):
        weighted_feature_stats(x, np.eye(50)[0])


def test_class_balance_weights_give_the_real_mix():
    from fastddgan.metrics import class_balance_weights

    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    w = class_balance_weights(labels, [0.2, 0.3, 0.5])
    shares = [float(w[labels == c].sum() / w.sum()) for c in range(3)]
    assert shares == pytest.approx([0.2, 0.3, 0.5])
    assert float(w.sum()) == pytest.approx(100)
    # a class with no sample: the real shares are renormalised over the classes the samples hold
    w = class_balance_weights(torch.tensor([0] * 80 + [2] * 20), [0.25, 0.5, 0.25])
    assert float(w[:80].sum() / w.sum()) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="labels"):
        class_balance_weights(torch.tensor([0, 3]), [0.5, 0.5])
    with pytest.raises(ValueError, match="real_shares"):
        class_balance_weights(torch.tensor([0, 1]), [0.5, -0.5])
    with pytest.raises(ValueError, match="real_shares"):
        class_balance_weights(torch.tensor([1, 1]), [1.0, 0.0])


def test_balanced_fid_dom_removes_the_cost_of_a_skewed_class_mix():
    """Three well-separated feature clusters in equal shares (the real data). Samples drawn from the same clusters
    in a 70/20/10 mix: FID-dom pays for the mix, FID-dom-balanced does not (close to a sample in the right mix).
    Samples in the right mix but blurred: both pay alike."""
    from fastddgan.metrics import fid_dom_balanced

    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[6.0, 0, 0, 0], [0, 6.0, 0, 0], [0, 0, 6.0, 0]])

    def draw(counts, scale=1.0):
        labels = torch.cat([torch.full((k,), c) for c, k in enumerate(counts)])
        return centres[labels] + scale * torch.randn(len(labels), 4, generator=g), 10.0 * centres[labels]

    real, _ = draw([20000, 20000, 20000])
    stats = feature_stats(real)
    shares = [1 / 3] * 3
    skewed, skewed_logits = draw([1400, 400, 200])
    fair, fair_logits = draw([667, 667, 666])
    blurred, blurred_logits = draw([667, 667, 666], scale=3.0)
    assert fid_dom(skewed, stats) > 5  # the mix alone costs a lot
    assert fid_dom(fair, stats) < 0.1
    assert fid_dom_balanced(skewed, skewed_logits, stats, shares) < 0.2
    assert fid_dom_balanced(fair, fair_logits, stats, shares) == pytest.approx(fid_dom(fair, stats), abs=0.02)
    assert fid_dom_balanced(blurred, blurred_logits, stats, shares) == pytest.approx(fid_dom(blurred, stats),
                                                                                   rel=0.05)
    assert fid_dom_balanced(blurred, blurred_logits, stats, shares) > 4


# ---------------------------------------------------------------- improved precision and recall


def _pr_brute_force(real, fake, k):
    def radii(s):
        return [sorted(np.linalg.norm(s - p, axis=1))[k] for p in s]  # [0] is the point itself

    def share_inside(queries, support):
        r = radii(support)
        return np.mean([any(np.linalg.norm(q - p) <= rp for p, rp in zip(support, r)) for q in queries])

    return share_inside(fake, real), share_inside(real, fake)


@pytest.mark.parametrize("k", [1, 3])
def test_precision_recall_matches_the_definition(k):
    from fastddgan.metrics import precision_recall

    rng = np.random.default_rng(0)
    real = rng.standard_normal((60, 5))
    fake = rng.standard_normal((45, 5)) * 1.3 + 0.4
    p, r = _pr_brute_force(real, fake, k)
    got = precision_recall(real, fake, k=k)
    assert got == {"precision": pytest.approx(p, abs=1e-12), "recall": pytest.approx(r, abs=1e-12)}
    assert 0 < p < 1 and 0 < r < 1  # the case is not trivial


def test_precision_recall_tell_quality_from_coverage():
    from fastddgan.metrics import precision_recall

    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    real = centres[torch.arange(400) % 2] + torch.randn(400, 3, generator=g)
    same = centres[torch.arange(400) % 2] + torch.randn(400, 3, generator=g)
    one_mode = centres[0] + torch.randn(400, 3, generator=g)  # precise, covers half
    blurred = centres[torch.arange(400) % 2] + 4 * torch.randn(400, 3, generator=g)  # covers, imprecise
    far = torch.randn(400, 3, generator=g) + 50
    pr_same, pr_one, pr_blur, pr_far = (precision_recall(real, f) for f in (same, one_mode, blurred, far))
    assert pr_same["precision"] > 0.85 and pr_same["recall"] > 0.85
    assert pr_one["precision"] > 0.85 and 0.4 < pr_one["recall"] < 0.6
    assert pr_blur["precision"] < 0.5 and pr_blur["recall"] > 0.85
    assert pr_far == {"precision": 0.0, "recall": 0.0}


def test_precision_recall_rejects_bad_input():
    from fastddgan.metrics import precision_recall

    x = torch.randn(10, 4)
    with pytest.raises(ValueError, match="features_fake: expected 4 features"):
        precision_recall(x, torch.randn(10, 3))
    with pytest.raises(ValueError, match="k: each set needs more than k = 3 rows"):
        precision_recall(x, torch.randn(3, 4))
    with pytest.raises(ValueError, match="k: expected a positive integer"):
        precision_recall(x, x, k=0)
    with pytest.raises(ValueError, match="features_real: contains NaN"):
        precision_recall(torch.full((10, 4), float("nan")), x)
    with pytest.raises(ValueError, match=r"features_fake: expected features \(N, d\)"):
        precision_recall(x, torch.randn(10))
