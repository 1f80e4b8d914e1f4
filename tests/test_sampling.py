"""fastddgan.sample: shapes, determinism, chunk invariance, DDPM respacing, guidance and bad input (CPU), and the
CUDA-graph path against the eager one (GPU only)."""

import pytest
import torch

import fastddgan
from fastddgan import DDGAN, DDPM, Schedule
from fastddgan.models import build


@pytest.fixture(scope="module")
def ddgan():
    torch.manual_seed(0)
    model = DDGAN(build("tiny", "generator", num_classes=10), build("tiny", "discriminator", num_classes=10), 4,
                  num_classes=10, sample_shape=(1, 28, 28))
    model.train_step(torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 3]))
    return model


@pytest.fixture(scope="module")
def ddpm():
    torch.manual_seed(0)
    return DDPM(build("toy2d", "denoiser"), Schedule.linear(100), sample_shape=(2,), clip_x0=False, p_uncond=0.0)


def test_ddgan_shapes_range_and_determinism(ddgan):
    a = fastddgan.sample(ddgan, T=4, n=5, seed=1, class_labels=torch.arange(5))
    b = fastddgan.sample(ddgan, n=5, seed=1, class_labels=torch.arange(5))
    c = fastddgan.sample(ddgan, n=5, seed=2, class_labels=torch.arange(5))
    assert a.shape == (5, 1, 28, 28) and torch.isfinite(a).all()
    assert a.abs().max() <= 1.0 + 1e-5  # the last step returns the generator's tanh output
    assert torch.equal(a, b) and not torch.allclose(a, c)


@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_chunking_equals_one_batch(ddgan, ddpm, batch_size):
    labels = torch.tensor([3, 1, 4, 1, 5])
    whole = fastddgan.sample(ddgan, n=5, seed=7, class_labels=labels, guidance=0.5)
    chunked = fastddgan.sample(ddgan, n=5, seed=7, class_labels=labels, guidance=0.5, batch_size=batch_size)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-5)
    whole = fastddgan.sample(ddpm, T=10, n=5, seed=7)
    torch.testing.assert_close(fastddgan.sample(ddpm, T=10, n=5, seed=7, batch_size=batch_size), whole,
                               rtol=0, atol=1e-5)


def test_start_index_continues_a_draw_exactly(ddgan, ddpm):
    """``start_index=i`` draws images i.. of the seed's stream: a draw made in parts at the chunk boundaries of
    one call with ``batch_size`` is that call's result bit for bit (what a resumed evaluation relies on)."""
    labels = torch.tensor([3, 1, 4, 1, 5, 9])
    whole = fastddgan.sample(ddgan, n=6, seed=7, class_labels=labels, guidance=0.5, batch_size=2)
    parts = [fastddgan.sample(ddgan, n=2, seed=7, class_labels=labels[i:i + 2], guidance=0.5, start_index=i)
             for i in (0, 2, 4)]
    assert torch.equal(torch.cat(parts), whole)
    whole = fastddgan.sample(ddpm, T=10, n=6, seed=7, batch_size=3)
    assert torch.equal(torch.cat([fastddgan.sample(ddpm, T=10, n=3, seed=7, start_index=i) for i in (0, 3)]), whole)
    assert not torch.allclose(fastddgan.sample(ddpm, T=10, n=3, seed=7, start_index=1), whole[:3])
    with pytest.raises(ValueError, match="start_index: expected an integer >= 0, got -1"):
        fastddgan.sample(ddpm, T=10, n=3, seed=7, start_index=-1)


def test_same_results_on_every_backend(ddgan):
    """The eager reference backend draws the same Philox streams as the fused one (explicit seeds)."""
    labels = torch.arange(3)
    fused = fastddgan.sample(ddgan, n=3, seed=3, class_labels=labels)
    with fastddgan.ops.use_backend("torch"):
        eager = fastddgan.sample(ddgan, n=3, seed=3, class_labels=labels)
    torch.testing.assert_close(fused, eager, rtol=1e-4, atol=1e-4)


def test_generator_and_default_rng(ddgan):
    y = torch.arange(2)
    a = fastddgan.sample(ddgan, n=2, class_labels=y, generator=torch.Generator().manual_seed(4))
    b = fastddgan.sample(ddgan, n=2, class_labels=y, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(5)
    c = fastddgan.sample(ddgan, n=2, class_labels=y)
    torch.manual_seed(5)
    d = fastddgan.sample(ddgan, n=2, class_labels=y)
    assert torch.equal(a, b) and torch.equal(c, d) and not torch.allclose(a, c)


def test_guidance(ddgan):
    y = torch.tensor([2, 7])
    plain = fastddgan.sample(ddgan, n=2, seed=0, class_labels=y)
    assert torch.equal(plain, fastddgan.sample(ddgan, n=2, seed=0, class_labels=y, guidance=0.0))
    assert not torch.allclose(plain, fastddgan.sample(ddgan, n=2, seed=0, class_labels=y, guidance=2.0))


def test_ddpm_respaced_ddim_and_trajectory(ddpm):
    for T in (1, 3, 50, 100):
        out = fastddgan.sample(ddpm, T=T, n=4, seed=0)
        assert out.shape == (4, 2) and torch.isfinite(out).all()
    a = fastddgan.sample(ddpm, T=5, n=4, seed=0, ddim=True)
    assert torch.equal(a, fastddgan.sample(ddpm, T=5, n=4, seed=0, ddim=True))
    assert not torch.allclose(a, fastddgan.sample(ddpm, T=5, n=4, seed=1, ddim=True))
    images, trajectory = fastddgan.sample(ddpm, T=5, n=4, seed=0, return_trajectory=True, batch_size=3)
    assert len(trajectory) == 6 and all(x.shape == (4, 2) for x in trajectory)
    assert torch.equal(trajectory[-1], images)
    torch.testing.assert_close(images, fastddgan.sample(ddpm, T=5, n=4, seed=0), rtol=0, atol=1e-5)


def test_model_sample_methods_use_the_engine(ddgan):
    y = torch.arange(3)
    torch.testing.assert_close(ddgan.sample(3, y=y, seed=9), fastddgan.sample(ddgan, n=3, seed=9, class_labels=y))


def test_samplers_compose_with_the_protocol_by_hand(ddgan, ddpm):
    """sample() is the samplers' composition with a model's protocol: its setup (sampler, schedule, denoiser,
    options) applied by hand to the same Philox streams gives the same samples, bitwise."""
    from fastddgan import ops
    from fastddgan.sampling import stream_seeds

    for model, T, kwargs in ((ddgan, None, {"class_labels": torch.arange(3), "guidance": 0.5}),
                             (ddpm, 7, {}), (ddpm, 5, {"ddim": True}), (ddpm, 6, {"variance": "large"})):
        setup = model.sampling_setup(T, ddim=kwargs.get("ddim", False), variance=kwargs.get("variance", "small"))
        denoiser = setup.denoiser(model.sampling_network(), torch.device("cpu"), kwargs.get("guidance", 0.0))
        seeds = stream_seeds(ops.seed_tensor(11, 0, "cpu")[:1], setup.streams, torch.zeros(1, dtype=torch.int64))
        x = ops.normal((3, *model.sample_shape), seeds[0])
        with torch.inference_mode():
            got = setup.sampler(denoiser, x, setup.schedule, seeds, extra_args={"y": kwargs.get("class_labels")},
                                **setup.options)
        assert torch.equal(got, fastddgan.sample(model, T, 3, seed=11, **kwargs))


def test_samplers_take_any_denoiser():
    """The samplers share one signature and take any denoiser callable (k-diffusion's convention): with the exact
    denoiser of a point mass at m, DDGAN's chain (x0 = m at every step) ends at m exactly (the last posterior step
    has variance 0), and DDIM's and DDPM's ancestral chains (eps of the point mass; the last step's variance is 0)
    at m up to float32 rounding."""
    from fastddgan import ops
    from fastddgan.sampling import ddgan_sampler, ddim_sampler, ddpm_sampler, stream_seeds

    m = torch.tensor([0.25, -0.5])
    point_x0 = lambda x_t, t, z, y=None: m.expand_as(x_t)  # noqa: E731 (a "generator" that ignores z)
    for schedule, sampler, denoise, options in [
            (Schedule.ddgan(4), ddgan_sampler, point_x0, {"nz": 3}),
            (Schedule.linear(50), ddim_sampler, None, {"clip_x0": False}),
            (Schedule.linear(50), ddpm_sampler, None, {"clip_x0": False})]:
        if denoise is None:
            ab = schedule.alphas_cumprod.float()
            denoise = lambda x_t, t, y=None: (x_t - ab[t, None].sqrt() * m) / (1 - ab[t, None]).sqrt()  # noqa: E731
        seeds = stream_seeds(torch.tensor([5]), 1 + sampler.streams_per_step * schedule.T, torch.zeros(1).long())
        x = ops.normal((64, 2), seeds[0])
        trajectory = []
        out = sampler(denoise, x, schedule, seeds, trajectory=trajectory, **options)
        assert len(trajectory) == schedule.T and trajectory[-1] is out
        if sampler is ddgan_sampler:
            assert torch.equal(out, m.expand_as(out))
        else:
            torch.testing.assert_close(out, m.expand_as(out), rtol=0, atol=1e-4)  # float32 rounding (3e-6 seen)


def test_ddgan_sampler_runs_the_last_k_steps():
    """steps=k: the generator is called at t = k-1, ..., 0 only, with the seed rows of those steps, so the last k
    steps of a whole chain, restarted from its x_k, give the chain's result bit for bit; steps outside [1, T] are
    refused."""
    from fastddgan import ops
    from fastddgan.sampling import ddgan_sampler, stream_seeds

    schedule, calls = Schedule.ddgan(4), []

    def generator(x_t, t, z):
        calls.append(int(t[0]))
        return torch.tanh(x_t + z[:, :2])

    seeds = stream_seeds(torch.tensor([9]), 1 + 2 * schedule.T, torch.zeros(1).long())
    trajectory = []
    whole = ddgan_sampler(generator, ops.normal((16, 2), seeds[0]), schedule, seeds, nz=3, trajectory=trajectory)
    assert calls == [3, 2, 1, 0]
    calls.clear()
    last_two = ddgan_sampler(generator, trajectory[1], schedule, seeds, nz=3, steps=2)  # trajectory[1] = x_2
    assert calls == [1, 0] and torch.equal(last_two, whole)
    for bad in (0, 5):
        with pytest.raises(ValueError, match="steps: expected an integer in"):
            ddgan_sampler(generator, whole, schedule, seeds, nz=3, steps=bad)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(n=0), ValueError, "n: expected an integer >= 1"),
    (dict(T=2), ValueError, "T: this DDGAN was trained with T=4"),
    (dict(class_labels=torch.arange(3)), ValueError, "class_labels: expected 2 labels"),
    (dict(class_labels=torch.tensor([0, 11])), ValueError, r"class_labels: expected labels in \[0, 10\]"),
    (dict(dtype="fp8"), ValueError, "dtype: expected one of"),
    (dict(guidance=1.0), ValueError, r"guidance: guided sampling needs class labels \(class_labels="),
    (dict(batch_size=0), ValueError, "batch_size: expected an integer >= 1"),
    (dict(cuda_graph="yes"), ValueError, "cuda_graph: expected 'auto', True or False"),
    (dict(cuda_graph=True), ValueError, "cuda_graph: CUDA graphs need a CUDA device"),
    (dict(ddim=True), ValueError, "ddim: DDIM steps are for DDPM models"),
])
def test_bad_input(ddgan, kwargs, error, match):
    kwargs = {"n": 2, **kwargs}
    with pytest.raises(error, match=match):
        fastddgan.sample(ddgan, **kwargs)


def test_bad_model_and_unconditional_guidance(ddpm):
    with pytest.raises(TypeError, match="model: expected a fastddgan.DDGAN, a fastddgan.DDPM or a checkpoint path"):
        fastddgan.sample(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="guidance: classifier-free guidance needs a class-conditional model"):
        fastddgan.sample(ddpm, n=2, guidance=1.0)
    with pytest.raises(ValueError, match=r"T: expected an integer in \[1, 100\]"):
        fastddgan.sample(ddpm, T=101, n=2)


# ------------------------------------------------------------------------------------------------ graph cache
class FakePlan:
    """Stands in for a CapturedPlan (no GPU here): its memory, and an eager replay of the plan."""

    def __init__(self, plan=None, nbytes=0):
        self.plan, self.nbytes = plan, nbytes

    def replay(self, base_key, offset, y):
        return fastddgan.sampling.run_plan(self.plan, base_key, offset, y)


class Owner:
    """A weakly referencable stand-in for a model."""


def test_graph_cache_evicts_the_least_recently_used_by_bytes_and_count():
    from fastddgan.sampling import GraphCache

    cache = GraphCache(max_bytes=100, max_entries=3)
    a, b = Owner(), Owner()
    plans = {k: FakePlan(nbytes=n) for k, n in [("p", 40), ("q", 40), ("r", 10), ("s", 30), ("big", 500)]}
    cache.put(a, ("p",), plans["p"])
    cache.put(b, ("q",), plans["q"])
    assert cache.get(a, ("p",)) is plans["p"]  # p is now the most recently used
    cache.put(a, ("s",), plans["s"])  # 110 bytes > 100: q, the least recently used, goes
    assert cache.get(b, ("q",)) is None and len(cache) == 2 and cache.nbytes == 70
    cache.put(b, ("r",), plans["r"])
    cache.put(b, ("q",), plans["q"])  # 4 entries > 3 and 120 bytes > 100: p goes (the LRU), then 80 bytes, 3 entries
    assert [cache.get(a, ("p",)), len(cache), cache.nbytes] == [None, 3, 80]
    assert cache.get(b, ("q",)) is plans["q"] and cache.get(a, ("s",)) is plans["s"]
    cache.put(a, ("s",), FakePlan(nbytes=5))  # replacing an entry counts its new size only
    assert cache.nbytes == 55
    cache.put(a, ("big",), plans["big"])  # above the bound alone: kept (it is replayed next), all others go
    assert len(cache) == 1 and cache.get(a, ("big",)) is plans["big"] and cache.nbytes == 500
    cache.set_limits(max_bytes=None, max_entries=None)
    for k in "pqr":
        cache.put(b, (k,), plans[k])
    assert len(cache) == 4 and cache.nbytes == 590
    del b  # a freed model's plans go with it
    import gc

    gc.collect()
    assert len(cache) == 1 and cache.nbytes == 500
    cache.set_limits(max_bytes=0)  # applied at once
    assert len(cache) == 0 and cache.nbytes == 0
    with pytest.raises(ValueError, match="max_entries: expected an integer >= 1 or None, got 0"):
        cache.set_limits(max_entries=0)


def test_sample_replays_cached_plans_and_evicts_by_memory(ddgan, monkeypatch):
    """sample()'s graph path on CPU, with the capture replaced by a fake plan of a set size: a configuration seen
    before is replayed from the cache, and the cache stays within its bound (the graph path itself needs a GPU)."""
    from fastddgan import sampling

    captured = []

    def capture(plan):
        captured.append(FakePlan(plan, nbytes=60))
        return captured[-1]

    monkeypatch.setattr(sampling, "_use_graph", lambda *args: True)
    monkeypatch.setattr(sampling, "CapturedPlan", capture)
    monkeypatch.setattr(sampling, "_GRAPH_CACHE", sampling.GraphCache(max_bytes=100))
    labels = torch.arange(4)
    first = fastddgan.sample(ddgan, n=4, seed=1, class_labels=labels)
    assert torch.equal(first, fastddgan.sample(ddgan, n=4, seed=1, class_labels=labels, cuda_graph=False))
    fastddgan.sample(ddgan, n=4, seed=2, class_labels=labels)
    assert len(captured) == 1  # the same configuration: replayed, not captured again
    fastddgan.sample(ddgan, n=2, seed=2, class_labels=labels[:2])  # another one: 120 bytes > 100, n=4 evicted
    assert len(captured) == 2 and len(sampling._GRAPH_CACHE) == 1 and sampling._GRAPH_CACHE.nbytes == 60
    fastddgan.sample(ddgan, n=4, seed=1, class_labels=labels)
    assert len(captured) == 3


# ------------------------------------------------------------------------------------------------ GPU only
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def no_tf32():
    """float32 convolutions and matmuls in full precision: with TF32 (cuDNN's default) batches of 8 and 16 pick
    other algorithms and differ by ~1e-3 (seen on an H200), which is not what these tests are about."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@gpu
def test_graph_path_equals_eager_and_replays_fresh(ddgan, no_tf32):
    model = ddgan.to("cuda")
    y = torch.arange(16, device="cuda") % 10
    eager = fastddgan.sample(model, n=16, seed=3, class_labels=y, cuda_graph=False)
    graphed = fastddgan.sample(model, n=16, seed=3, class_labels=y, cuda_graph=True)
    again = fastddgan.sample(model, n=16, seed=3, class_labels=y, cuda_graph=True)
    other = fastddgan.sample(model, n=16, seed=4, class_labels=y, cuda_graph=True)
    torch.testing.assert_close(graphed, eager, rtol=1e-4, atol=1e-4)
    assert torch.equal(graphed, again) and not torch.allclose(graphed, other)
    chunked = fastddgan.sample(model, n=16, seed=3, class_labels=y, cuda_graph=True, batch_size=8)
    torch.testing.assert_close(chunked, eager, rtol=1e-4, atol=1e-4)
    # truncation is part of the captured graph's key: a new psi is a new capture, not a replay of psi = 1
    truncated = fastddgan.sample(model, n=16, seed=3, class_labels=y, cuda_graph=True, truncation=0.5)
    torch.testing.assert_close(truncated, fastddgan.sample(model, n=16, seed=3, class_labels=y, cuda_graph=False,
                                                           truncation=0.5), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(truncated, graphed)


@gpu
def test_sample_takes_a_device_without_index(ddgan):
    """device="cuda" names the model's device cuda:0 (the trainer's final sampling passed it so and failed)."""
    model = ddgan.to("cuda")
    out = fastddgan.sample(model, n=2, seed=1, class_labels=torch.arange(2, device="cuda"), device="cuda")
    assert out.device == next(model.sampling_network().parameters()).device


@gpu
def test_graph_replay_has_no_host_sync(ddgan):
    model = ddgan.to("cuda")
    y = torch.arange(8, device="cuda")
    fastddgan.sample(model, n=8, seed=0, class_labels=y)  # capture
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        fastddgan.sample(model, n=8, seed=1, class_labels=y)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_truncation_scales_the_generators_latent_and_nothing_else(ddgan, ddpm, monkeypatch):
    labels = torch.arange(3)
    plain = fastddgan.sample(ddgan, n=3, seed=11, class_labels=labels)
    assert torch.equal(fastddgan.sample(ddgan, n=3, seed=11, class_labels=labels, truncation=1.0), plain)
    seen = []
    net = ddgan.sampling_network()
    original = type(net).forward

    def recording(self, x_t, z, t, y=None):
        seen.append(z.clone())
        return original(self, x_t, z, t, y)

    monkeypatch.setattr(type(net), "forward", recording)
    fastddgan.sample(ddgan, n=3, seed=11, class_labels=labels)
    full, seen[:] = list(seen), []
    half = fastddgan.sample(ddgan, n=3, seed=11, class_labels=labels, truncation=0.5)
    halved, seen[:] = list(seen), []
    zero = fastddgan.sample(ddgan, n=3, seed=11, class_labels=labels, truncation=0.0)
    assert len(full) == len(halved) == 4 and all(torch.equal(h, 0.5 * f) for h, f in zip(halved, full))
    assert all(torch.equal(z, torch.zeros_like(z)) for z in seen)
    assert not torch.allclose(half, plain) and not torch.allclose(zero, half)
    for bad in (-0.5, "0.5", True):  # a string or a bool is not a number here (float() would take them)
        with pytest.raises(ValueError, match="truncation: expected a finite number >= 0"):
            fastddgan.sample(ddgan, n=2, seed=1, class_labels=labels[:2], truncation=bad)
    with pytest.raises(ValueError, match="truncation: scales a DDGAN generator's latent; this DDPM has none"):
        fastddgan.sample(ddpm, T=10, n=2, seed=1, truncation=0.5)
    assert fastddgan.sample(ddpm, T=10, n=2, seed=1, truncation=1.0).shape == (2, 2)
