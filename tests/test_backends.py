"""Every fused backend against the reference: exactly through the explicit-noise path, and through the in-kernel
Philox noise both exactly (against the pure-PyTorch stream of fastddgan.ops.philox) and statistically. Philox itself
against the published Random123 known answers on every backend, and the eager reference backend (``torch``) against
implementations written out here (scalar Philox and Box-Muller, the DDPM step from the schedule's betas, the rounding
of numpy), never against itself."""

import math

import numpy as np
import pytest
import torch

from backend_cases import backend_params, fused_backends
from fastddgan import Schedule, ops
from fastddgan.ops import _library, philox, philox_normal, reference, seed_tensor

FUSED = backend_params()
# shapes: channels, odd sizes (numel and per-sample size not multiples of 4), one sample, flat 2-D data
SHAPES = [(7, 3, 5, 5), (4, 1, 28, 28), (1, 3, 7, 9), (33, 2), (5, 1, 1, 3)]
DTYPES = {torch.float32: 1e-6, torch.float64: 1e-12, torch.float16: 1e-3, torch.bfloat16: 1e-2}


def rand(shape, device, seed, dtype=torch.float32):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device=device, dtype=dtype)


def steps_for(batch, T, device):
    return (torch.arange(batch) % T).to(device)


@pytest.mark.parametrize("backend,device", FUSED)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_explicit_noise_matches_reference_all_dtypes(backend, device, shape):
    s = Schedule.ddgan(4)
    for dtype in DTYPES:  # the Triton interpreter too (bf16 and fp16 rounding: below)
        x0, x_t, noise = (rand(shape, device, k, dtype) for k in range(3))
        t = steps_for(shape[0], 4, device)
        table = s.kernel_table("posterior", ops.compute_dtype(dtype), device)
        expect = reference.affine_noise(x0, x_t, t, table, noise)
        with ops.use_backend(backend):
            got = ops.posterior_sample(x0, x_t, t, s, noise=noise)
            got_q = ops.q_sample(x0, t, s, noise=noise)
        tol = DTYPES[dtype]
        assert got.dtype == dtype and got.shape == shape
        torch.testing.assert_close(got, expect, rtol=tol, atol=tol)
        expect_q = reference.affine_noise(x0, None, t, s.kernel_table("q_sample", table.dtype, device), noise)
        torch.testing.assert_close(got_q, expect_q, rtol=tol, atol=tol)


@pytest.mark.parametrize("backend,device", FUSED)
@pytest.mark.parametrize("variance", ["small", "large"])
def test_ddpm_step_explicit_noise_matches_reference(backend, device, variance):
    s = Schedule.linear(1000).respace(20)
    for dtype in DTYPES:
        eps, x_t, noise = (rand((6, 3, 5, 3), device, k, dtype) for k in range(3))
        t = torch.tensor([0, 1, 5, 10, 18, 19], device=device)
        for clip in (True, False):
            table = s.kernel_table(f"ddpm_{variance}", ops.compute_dtype(dtype), device)
            expect = reference.ddpm_step(eps, x_t, t, table, noise, clip)
            with ops.use_backend(backend):
                got = ops.ddpm_step(eps, x_t, t, s, variance=variance, clip_x0=clip, noise=noise)
            torch.testing.assert_close(got, expect, rtol=DTYPES[dtype], atol=DTYPES[dtype] * 10)


def raw_noise(backend, device, shape, key, sample_offset=0):
    """The kernel's in-kernel noise itself: affine_noise with table rows (0, 0, 1)."""
    table = torch.tensor([[0.0], [0.0], [1.0]], device=device)
    zeros = torch.zeros(shape, device=device)
    t = torch.zeros(shape[0], dtype=torch.long, device=device)
    with ops.use_backend(backend):
        return _library.affine_noise(zeros, None, t, table, None, seed_tensor(key, sample_offset, device))


@pytest.mark.parametrize("backend,device", FUSED)
@pytest.mark.parametrize("key,offset", [(0, 0), (1, 0), (2**62 + 12345, 7), (-7, 2**31 + 5)])
@pytest.mark.parametrize("shape", [(3, 1031), (5, 2, 4), (70, 3)], ids=str)  # per-sample sizes 1031, 8, 3
def test_in_kernel_noise_is_the_philox_stream(backend, device, key, offset, shape):
    got = raw_noise(backend, device, shape, key, offset).double().cpu().reshape(shape[0], -1)
    expect = philox_normal(seed_tensor(key, offset), shape[0], got.shape[1])
    torch.testing.assert_close(got, expect, rtol=0, atol=2e-5)


@pytest.mark.parametrize("backend,device", FUSED)
def test_a_samples_noise_does_not_depend_on_the_rest_of_the_batch(backend, device):
    """Chunks with the right sample_offset reproduce the whole batch's noise exactly."""
    whole = raw_noise(backend, device, (6, 3, 5), 42)
    chunks = torch.cat([raw_noise(backend, device, (4, 3, 5), 42, 0), raw_noise(backend, device, (2, 3, 5), 42, 4)])
    assert torch.equal(whole, chunks)
    assert not torch.allclose(whole[:2], whole[2:4])


@pytest.mark.parametrize("backend,device", FUSED)
def test_seeded_op_uses_the_seed_drawn_from_the_generator(backend, device):
    s = Schedule.ddgan(4)
    x0, x_t = rand((6, 2, 5, 5), device, 1), rand((6, 2, 5, 5), device, 2)
    t = steps_for(6, 4, device)
    gen = torch.Generator(device=device)
    with ops.use_backend(backend):
        got = ops.posterior_sample(x0, x_t, t, s, generator=gen.manual_seed(123))
    seed = ops.draw_seed(torch.device(device), gen.manual_seed(123))
    assert seed.shape == (2,) and int(seed[1]) == 0
    noise = philox_normal(seed, x0.shape[0], x0[0].numel(), device).view(x0.shape)
    expect = reference.affine_noise(x0, x_t, t, s.kernel_table("posterior", torch.float32, device), noise)
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("backend,device", FUSED)
def test_noise_statistics(backend, device):
    """x0 = x_t = 0 leaves std[t] * z: per-timestep variance, zero mean, Gaussian shape, nothing at t == 0."""
    s = Schedule.ddgan(4)
    batch, inner = 64, 1000 if backend != "triton" or torch.cuda.is_available() else 250
    zeros = torch.zeros(batch, inner, device=device)
    t = steps_for(batch, 4, device)
    with ops.use_backend(backend):
        out = ops.posterior_sample(zeros, zeros, t, s, generator=torch.Generator(device).manual_seed(0))
    out = out.double().cpu()
    std = s.posterior_variance.sqrt()
    assert torch.equal(out[t.cpu() == 0], torch.zeros_like(out[t.cpu() == 0]))
    z = out[t.cpu() != 0] / std[t.cpu()[t.cpu() != 0]].unsqueeze(1)
    n = z.numel()
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    for step in (1, 2, 3):
        zs = out[t.cpu() == step] / std[step]
        assert abs(zs.var() - 1) < 5 * math.sqrt(2 / zs.numel())
    within_1sd = (z.abs() < 1).double().mean()
    assert abs(within_1sd - 0.682689) < 5 * math.sqrt(0.2166 / n)
    kurtosis = (z**4).mean() / z.var() ** 2
    assert abs(kurtosis - 3) < 5 * math.sqrt(24 / n)


def corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / (a.std() * b.std()))


@pytest.mark.parametrize("backend,device", FUSED)
def test_noise_independent_across_elements_lanes_and_calls(backend, device):
    n = 4 * 4096 if backend != "triton" or torch.cuda.is_available() else 4 * 1024
    first = raw_noise(backend, device, (1, n), 11).double().cpu().flatten()
    second = raw_noise(backend, device, (1, n), 12).double().cpu().flatten()
    neighbour = raw_noise(backend, device, (2, n), 11).double().cpu()[1]  # the next sample's stream
    bound = 5 / math.sqrt(n / 4)
    assert abs(corr(first[:-1], first[1:])) < bound
    lanes = first.view(-1, 4)  # the four normals of one Philox counter
    for i in range(4):
        for j in range(i + 1, 4):
            assert abs(corr(lanes[:, i], lanes[:, j])) < bound
            assert abs(corr(lanes[:, i] ** 2, lanes[:, j] ** 2)) < bound  # Box-Muller pairs share a radius
    assert abs(corr(first, second)) < bound
    assert abs(corr(first, neighbour)) < bound


@pytest.mark.parametrize("backend,device", FUSED)
def test_same_seed_same_output_and_fresh_noise_per_call(backend, device):
    s = Schedule.ddgan(4)
    x0, x_t = rand((4, 3, 6, 6), device, 1), rand((4, 3, 6, 6), device, 2)
    t = torch.tensor([1, 2, 3, 1], device=device)
    with ops.use_backend(backend):
        torch.manual_seed(7)
        a = ops.posterior_sample(x0, x_t, t, s)
        b = ops.posterior_sample(x0, x_t, t, s)
        torch.manual_seed(7)
        a2 = ops.posterior_sample(x0, x_t, t, s)
        g = torch.Generator(device=device).manual_seed(3)
        c = ops.posterior_sample(x0, x_t, t, s, generator=g)
        c2 = ops.posterior_sample(x0, x_t, t, s, generator=torch.Generator(device=device).manual_seed(3))
    assert torch.equal(a, a2) and torch.equal(c, c2)
    assert not torch.allclose(a, b) and not torch.allclose(a, c)


def test_fused_backends_agree_for_the_same_seed():
    """cpp and triton (and cuda on a GPU) draw the same stream: same seed -> same samples up to rounding."""
    s = Schedule.ddgan(4)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    names = fused_backends(device)
    if len(names) < 2:
        pytest.skip(f"only {names} available on {device}")
    x0, x_t = rand((4, 3, 5, 5), device, 1), rand((4, 3, 5, 5), device, 2)
    t = torch.tensor([0, 1, 2, 3], device=device)
    outs = []
    for name in names:
        with ops.use_backend(name):
            outs.append(ops.posterior_sample(x0, x_t, t, s, generator=torch.Generator(device).manual_seed(5)))
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("backend,device", FUSED)
def test_empty_batch(backend, device):
    s = Schedule.ddgan(4)
    x = torch.zeros(0, 3, 4, 4, device=device)
    with ops.use_backend(backend):
        assert ops.posterior_sample(x, x, torch.zeros(0, dtype=torch.long, device=device), s).shape == x.shape


@pytest.mark.parametrize("backend,device", FUSED)
def test_mean_and_variance_over_many_draws_match_the_coefficients(backend, device):
    """One (x0, x_t) pair repeated over a large batch: per element, the draws' mean is coef1 x0 + coef2 x_t and
    their variance is posterior_variance, at every timestep."""
    s = Schedule.ddgan(4)
    draws, inner = (4000, 12) if backend != "triton" or torch.cuda.is_available() else (2000, 12)
    x0, x_t = rand((1, inner), device, 1), rand((1, inner), device, 2)
    for step in range(4):
        t = torch.full((draws,), step, device=device)
        with ops.use_backend(backend):
            out = ops.posterior_sample(x0.expand(draws, inner).contiguous(), x_t.expand(draws, inner).contiguous(),
                                       t, s, generator=torch.Generator(device).manual_seed(step))
        out = out.double().cpu()
        mean = float(s.posterior_mean_coef1[step]) * x0.double().cpu() + \
            float(s.posterior_mean_coef2[step]) * x_t.double().cpu()
        var = float(s.posterior_variance[step])
        if var == 0:
            torch.testing.assert_close(out, mean.expand_as(out), rtol=0, atol=1e-6)
            continue
        assert ((out.mean(0) - mean[0]).abs() < 5 * math.sqrt(var / draws)).all()
        assert ((out.var(0) / var - 1).abs() < 5 * math.sqrt(2 / draws)).all()


@pytest.mark.parametrize("backend,device", [pytest.param("torch", "cpu", id="torch-cpu")] + FUSED)
def test_explicit_seed_gives_the_same_stream_on_every_backend(backend, device):
    """With seed=[key, sample_offset] every backend, the eager reference included, draws the Philox stream (here:
    the scalar one of this file) and applies the posterior / DDPM-step formulas (here: from the betas)."""
    s = Schedule.ddgan(4)
    x0, x_t = rand((3, 2, 5), device, 1), rand((3, 2, 5), device, 2)
    t = torch.tensor([1, 2, 3], device=device)
    seed = seed_tensor(99, 5, device)
    with ops.use_backend(backend):
        got = ops.posterior_sample(x0, x_t, t, s, seed=seed)
        z = ops.normal((3, 7), seed)
        eps_step = ops.ddpm_step(x0, x_t, t, s, seed=seed)
    noise = scalar_stream(99, 5, 3, 10).view(3, 2, 5)
    torch.testing.assert_close(got.double().cpu(), posterior_expected(x0, x_t, t, s, noise), rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(z.double().cpu(), scalar_stream(99, 5, 3, 7), rtol=0, atol=2e-5)
    torch.testing.assert_close(eps_step.double().cpu(), ddpm_step_expected(x0, x_t, t, s, noise, True),
                               rtol=1e-5, atol=2e-5)


def test_cpu_kernel_gives_the_same_draws_with_one_or_two_threads():
    """The tests run single-threaded (tests/conftest.py); this one splits the C++ kernel's work over two threads
    (more than its 16k-element grain) and checks that the draws do not depend on the split."""
    s = Schedule.ddgan(4)
    x0, x_t = rand((8, 3, 32, 32), "cpu", 1), rand((8, 3, 32, 32), "cpu", 2)
    t = torch.arange(8) % 4
    seed = seed_tensor(11, 0, "cpu")
    before = torch.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with ops.use_backend("cpp"):
                outs.append((ops.posterior_sample(x0, x_t, t, s, seed=seed),
                             ops.ddpm_step(x0, x_t, t, s, seed=seed)))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


def test_cpu_philox_paths_give_the_same_draws(tmp_path):
    """The CPU kernel computes the Philox words with AVX-512 intrinsics where the CPU has them, else with a portable
    loop (FASTDDGAN_CPU_NO_AVX512=1 forces it): integer arithmetic, so the same noise bit for bit. Compared in a
    subprocess (the choice is made once per process); counts of counters that use every branch (32-wide, 8-wide,
    single)."""
    import os
    import subprocess
    import sys

    if "cpp" not in ops.available("cpu"):
        pytest.skip("the cpp backend is not built")
    code = ("import sys, torch; from fastddgan import ops\n"
            "with ops.use_backend('cpp'):\n"
            "    torch.save([ops.normal(shape, ops.seed_tensor(key, 3)) for shape in [(3, 1031), (2, 4 * 47), (9, 5), "
            "(1, 1), (4, 3, 32, 32)] for key in (0, -1, 0x299F31D0A4093822)], sys.argv[1])\n")
    outs = []
    for name, extra in (("native", {}), ("portable", {"FASTDDGAN_CPU_NO_AVX512": "1"})):
        env = {k: v for k, v in os.environ.items() if k != "FASTDDGAN_CPU_NO_AVX512"}
        path = tmp_path / f"{name}.pt"
        run = subprocess.run([sys.executable, "-c", code, str(path)], env={**env, **extra}, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        outs.append(torch.load(path))
    assert all(torch.equal(a, b) for a, b in zip(*outs))
    ref = philox_normal(seed_tensor(-1, 3), 3, 1031).float()  # and the stream itself, to float rounding
    torch.testing.assert_close(outs[0][1], ref, rtol=1e-5, atol=1e-5)


def test_cpu_step_loop_clones_give_the_same_bits(tmp_path):
    """The CPU kernel's elementwise loops (the step ops' and q_sample_pairs') are built for AVX-512, AVX2 and the
    baseline, chosen at run time (FASTDDGAN_CPU_NO_AVX512=1 / FASTDDGAN_CPU_NO_AVX2=1 force a narrower one), all
    with floating-point contraction off: the same bits on every path, for every dtype, with the noise given and
    drawn in-kernel, odd sizes (vector tails) and a scalar-expanded eps. Compared in subprocesses (the choice is
    made once per process)."""
    import os
    import subprocess
    import sys

    if "cpp" not in ops.available("cpu"):
        pytest.skip("the cpp backend is not built")
    code = ("import sys, torch; from fastddgan import ops, Schedule\n"
            "s4, s1000, outs = Schedule.ddgan(4), Schedule.linear(1000), []\n"
            "with ops.use_backend('cpp'):\n"
            "    for shape in [(3, 1031), (5, 3, 7, 9), (2, 64), (1, 1)]:\n"
            "        for dt in (torch.float32, torch.float64, torch.float16, torch.bfloat16):\n"
            "            g = torch.Generator().manual_seed(shape[-1])\n"
            "            a, b, n1, n2 = (torch.randn(shape, generator=g, dtype=torch.float64).mul(1.7).to(dt)\n"
            "                            for _ in range(4))\n"
            "            seed, t4 = ops.seed_tensor(7, 3), torch.arange(shape[0]) % 4\n"
            "            t = (torch.arange(shape[0]) * 37 + 1) % 1000\n"
            "            a1 = a.reshape(-1)[:1].reshape([1] * len(shape)).expand(shape)\n"
            "            outs += [ops.posterior_sample(a, b, t4, s4, noise=n1), ops.posterior_sample(a, b, t4, s4, seed=seed),\n"
            "                     *ops.q_sample_pairs(a, t4, s4, noise=(n1, n2)),\n"
            "                     *ops.q_sample_pairs(a, t4, s4, generator=torch.Generator().manual_seed(1))]\n"
            "            for var in ('small', 'large'):\n"
            "                for clip in (True, False):\n"
            "                    outs += [ops.ddpm_step(e, b, t, s1000, variance=var, clip_x0=clip, **kw)\n"
            "                             for e in (a, a1) for kw in ({'noise': n1}, {'seed': seed})]\n"
            "torch.save(outs, sys.argv[1])\n")
    outs = []
    for name, extra in (("native", {}), ("no-avx512", {"FASTDDGAN_CPU_NO_AVX512": "1"}),
                        ("baseline", {"FASTDDGAN_CPU_NO_AVX512": "1", "FASTDDGAN_CPU_NO_AVX2": "1"})):
        env = {k: v for k, v in os.environ.items() if k not in ("FASTDDGAN_CPU_NO_AVX512", "FASTDDGAN_CPU_NO_AVX2")}
        path = tmp_path / f"{name}.pt"
        run = subprocess.run([sys.executable, "-c", code, str(path)], env={**env, **extra}, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        outs.append(torch.load(path))
    bits = [[x.reshape(-1).view(torch.uint8) for x in out] for out in outs]  # -0.0 and NaN payloads too
    for other in bits[1:]:
        assert len(other) == len(bits[0]) and all(torch.equal(x, y) for x, y in zip(bits[0], other))


# ---------------------------------------------------------------------------------------------- exact semantics
# Found on the Triton backend (issue 13): a non-contiguous seed read at the wrong offsets, a clipped NaN turned into
# -1, and bfloat16 outputs truncated instead of rounded. Checked on every backend, the eager reference included.
ALL = [pytest.param("torch", "cpu", id="torch-cpu")] + FUSED


@pytest.mark.parametrize("backend,device", ALL)
def test_a_non_contiguous_seed_is_read_by_value(backend, device):
    s = Schedule.ddgan(4)
    x0, x_t = rand((3, 2, 5), device, 1), rand((3, 2, 5), device, 2)
    t = torch.tensor([1, 2, 3], device=device)
    seed = torch.tensor([[99, -1], [5, -1]], device=device)[:, 0]  # [99, 5] with a stride of 2
    assert not seed.is_contiguous()
    with ops.use_backend(backend):
        got = (ops.posterior_sample(x0, x_t, t, s, seed=seed), ops.ddpm_step(x0, x_t, t, s, seed=seed),
               ops.normal((3, 7), seed))
        expect = (ops.posterior_sample(x0, x_t, t, s, seed=seed.contiguous()),
                  ops.ddpm_step(x0, x_t, t, s, seed=seed.contiguous()), ops.normal((3, 7), seed.contiguous()))
    for a, b in zip(got, expect):
        assert torch.equal(a, b)
    torch.testing.assert_close(got[2].double().cpu(), scalar_stream(99, 5, 3, 7), rtol=0, atol=2e-5)


@pytest.mark.parametrize("backend,device", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ddpm_step_clipping_keeps_nan(backend, device, dtype):
    """A NaN x0 stays NaN through clip_x0 (as with torch.clamp); infinities are clipped to +-1."""
    s = Schedule.linear(10)
    eps = rand((3, 6), device, 1, dtype)
    x_t, noise = rand((3, 6), device, 2, dtype), rand((3, 6), device, 3, dtype)
    eps[0, 1] = eps[2, 5] = float("nan")
    eps[1, 0], eps[1, 3] = float("inf"), -float("inf")
    t = torch.tensor([0, 5, 9], device=device)
    expect = ddpm_step_expected(eps, x_t, t, s, noise, True)
    with ops.use_backend(backend):
        got = ops.ddpm_step(eps, x_t, t, s, noise=noise, clip_x0=True)
    assert got.isnan().tolist() == expect.isnan().tolist() and int(got.isnan().sum()) == 2
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(got.double().cpu(), expect, equal_nan=True, rtol=tol, atol=tol)


def _rounding_cases(device, dtype):
    """(a, noise) pairs whose exact float32 sum a + noise needs rounding to ``dtype``: random values, ties on
    both sides of an even last bit, values that round up to the next power of two or to infinity, NaN, inf."""
    g = torch.Generator().manual_seed(0)
    a = (torch.randn(512, generator=g) * 2.0 ** torch.randint(-20, 20, (512,), generator=g)).to(dtype)
    small = (a.float() * torch.rand(512, generator=g) * 2.0**-7).to(dtype)  # below a's last bit: rounds
    ulp = 2.0**-7 if dtype == torch.bfloat16 else 2.0**-10
    biggest, top = torch.finfo(dtype).max, 2.0 ** math.floor(math.log2(torch.finfo(dtype).max))
    special = [(1.0, ulp / 2), (1.0 + ulp, ulp / 2), (-1.0, -ulp / 2), (-(1.0 + ulp), -ulp / 2),
               (2.0 - ulp, ulp / 2), (biggest, top * ulp / 2), (biggest, top * ulp / 4),
               (float("nan"), 1.0), (float("inf"), 1.0), (-float("inf"), 0.0)]
    a = torch.cat([a, torch.tensor([p for p, _ in special]).to(dtype)])
    noise = torch.cat([small, torch.tensor([q for _, q in special]).to(dtype)])
    assert torch.equal(noise[-len(special):].float(), torch.tensor([q for _, q in special]))  # exact in dtype
    return a.view(1, -1).to(device), noise.view(1, -1).to(device), biggest


@pytest.mark.parametrize("backend,device", ALL)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_results_are_rounded_to_nearest_even(backend, device, dtype):
    """Bit for bit what torch gives (round to nearest, ties to even), not a truncation one ulp off."""
    a, noise, biggest = _rounding_cases(device, dtype)
    t = torch.zeros(1, dtype=torch.long, device=device)
    for scale in (1.0, 1 / 3):
        table = torch.tensor([[scale], [0.0], [1.0]], device=device)
        expect = rounded_numpy(scale, a.cpu(), noise.cpu(), dtype)
        with ops.use_backend(backend):
            got = _library.affine_noise(a, None, t, table, noise, None).cpu()
        same = (got.view(torch.int16) == expect.view(torch.int16)) | (got.isnan() & expect.isnan())
        assert same.all(), (a[~same], got[~same], expect[~same])
        if scale == 1.0:  # the largest finite value plus half its last bit is a tie, rounded to infinity
            assert expect[0, -5].isinf() and expect[0, -4] == biggest and expect[0, -10] == 1.0


@pytest.mark.parametrize("backend,device", ALL)
def test_expanded_inputs_give_the_results_of_their_copies(backend, device):
    """An expanded scalar a (read in place by the kernels: ops.normal's zero) and a tensor expanded along some
    dimensions only (copied) give exactly what their contiguous copies give, for every op and dtype."""
    s = Schedule.ddgan(4)
    t = torch.tensor([0, 1, 3], device=device)
    seed = seed_tensor(3, 1, device)
    for dtype in (torch.float32, torch.float16, torch.float64):
        for a in (torch.full((1,), 1.5, dtype=dtype, device=device).expand(3, 2, 5),
                  rand((1, 2, 5), device, 4, dtype).expand(3, 2, 5),
                  rand((3, 1, 5), device, 5, dtype).expand(3, 2, 5)):
            b = rand((3, 2, 5), device, 6, dtype)
            with ops.use_backend(backend):
                got = (ops.q_sample(a, t, s, noise=b), ops.posterior_sample(a, b, t, s, seed=seed),
                       ops.ddpm_step(a, b, t, s, seed=seed), ops.ddpm_step(b, a, t, s, seed=seed))
                copy = a.contiguous()
                expect = (ops.q_sample(copy, t, s, noise=b), ops.posterior_sample(copy, b, t, s, seed=seed),
                          ops.ddpm_step(copy, b, t, s, seed=seed), ops.ddpm_step(b, copy, t, s, seed=seed))
            for x, y in zip(got, expect):
                assert x.is_contiguous() and torch.equal(x, y)


def rounded_numpy(scale, a, noise, dtype):
    """scale * a + noise in float32 (numpy, two IEEE roundings), then rounded to nearest even in ``dtype``: numpy's
    own float16 conversion, and for bfloat16 the rounding of the float32 bits written out (ties to even, NaN kept)."""
    x = np.float32(scale) * a.float().numpy() + np.float32(1.0) * noise.float().numpy()
    if dtype == torch.float16:
        with np.errstate(over="ignore"):  # the cases that round to infinity
            return torch.from_numpy(x.astype(np.float16))
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    rounded[np.isnan(x)] = 0x7FC0
    return torch.from_numpy(rounded.view(np.int16)).view(torch.bfloat16)


# ---------------------------------------------------------------------------------------------- Philox
# Random123's kat_vectors for philox4x32_10: (counter words, key words) -> output words.
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]
MASK32 = 0xFFFFFFFF


def scalar_philox(counter, key):
    """Philox4x32-10 on Python ints, from the Random123 description: per round (hi, lo)(0xD2511F53 c0) and
    (hi, lo)(0xCD9E8D57 c2) give (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0), then k += (0x9E3779B9, 0xBB67AE85)."""
    (c0, c1, c2, c3), (k0, k1) = counter, key
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & MASK32, (p0 >> 32) ^ c3 ^ k1, p0 & MASK32
        k0, k1 = (k0 + 0x9E3779B9) & MASK32, (k1 + 0xBB67AE85) & MASK32
    return c0, c1, c2, c3


def box_muller(words):
    """The stream's four normals of four words: u = ((w >> 9) + 1/2) / 2^23, then Box-Muller on (u0, u1), (u2, u3)."""
    u = [((w >> 9) + 0.5) / 2**23 for w in words]
    r01, r23 = math.sqrt(-2 * math.log(u[0])), math.sqrt(-2 * math.log(u[2]))
    return [r01 * math.cos(2 * math.pi * u[1]), r01 * math.sin(2 * math.pi * u[1]),
            r23 * math.cos(2 * math.pi * u[3]), r23 * math.sin(2 * math.pi * u[3])]


def scalar_stream(key, offset, batch, inner):
    """The documented noise stream element by element: element e of sample b is lane e % 4 of the counter
    (e // 4, b + offset, 0, 0) under the key words (lo32(key), hi32(key))."""
    key &= 2**64 - 1
    out = torch.empty(batch, 4 * ((inner + 3) // 4), dtype=torch.float64)
    for b in range(batch):
        for c in range(out.shape[1] // 4):
            words = scalar_philox((c, (b + offset) & MASK32, 0, 0), (key & MASK32, key >> 32))
            out[b, 4 * c:4 * c + 4] = torch.tensor(box_muller(words), dtype=torch.float64)
    return out[:, :inner]


def posterior_coefficients(s, step):
    """(coef1, coef2, std, alphas_cumprod) of q(x_{t-1} | x_t, x0) at ``step``, from the betas in Python floats."""
    beta = float(s.betas[step])
    ab = float(torch.prod(1 - s.betas[:step + 1]))
    ab_prev = ab / (1 - beta)
    coef1, coef2 = math.sqrt(ab_prev) * beta / (1 - ab), math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab)
    return coef1, coef2, math.sqrt(beta * (1 - ab_prev) / (1 - ab)), ab


def posterior_expected(x0, x_t, t, s, noise):
    """coef1 x0 + coef2 x_t + std noise per sample, the coefficients from the betas (float64)."""
    out = []
    for i, step in enumerate(t.tolist()):
        coef1, coef2, std, _ = posterior_coefficients(s, step)
        out.append(coef1 * x0[i].double().cpu() + coef2 * x_t[i].double().cpu() + std * noise[i].double().cpu())
    return torch.stack(out)


def ddpm_step_expected(eps, x_t, t, s, noise, clip):
    """The ancestral step per element in Python floats: x0 = (x_t - sqrt(1 - ab) eps) / sqrt(ab), clipped to
    [-1, 1] (NaN stays NaN, as with torch.clamp), then the posterior draw with the small variance."""
    out = torch.empty(eps.shape, dtype=torch.float64)
    for i, step in enumerate(t.tolist()):
        coef1, coef2, std, ab = posterior_coefficients(s, step)
        flat = zip(eps[i].flatten().tolist(), x_t[i].flatten().tolist(), noise[i].flatten().tolist())
        values = []
        for e, x, z in flat:
            x0 = (x - math.sqrt(1 - ab) * e) / math.sqrt(ab)  # inf and NaN propagate as IEEE says
            if clip and not math.isnan(x0):
                x0 = min(1.0, max(-1.0, x0))
            values.append(coef1 * x0 + coef2 * x + std * z)
        out[i] = torch.tensor(values, dtype=torch.float64).view(eps[i].shape)
    return out


def test_the_scalar_philox_of_these_tests_gives_the_known_answers():
    for counter, key, words in PHILOX_KAT:
        assert scalar_philox(counter, key) == words


def philox_words(backend):
    """The raw Philox4x32-10 function of a backend (``torch``: the pure-PyTorch one of fastddgan.ops.philox)."""
    if backend == "torch":
        return philox.philox_words

    def words(counters, key):
        with ops.use_backend(backend):
            return _library.philox_words(counters, key)

    return words


@pytest.mark.parametrize("backend,device", ALL)
def test_philox_known_answers(backend, device):
    """Random123's kat_vectors for Philox4x32-10, through each backend's own round function."""
    counters = torch.tensor([c for c, _, _ in PHILOX_KAT], dtype=torch.int64, device=device)
    for i, (_, key, words) in enumerate(PHILOX_KAT):
        got = philox_words(backend)(counters, torch.tensor(key, dtype=torch.int64, device=device))
        assert got.dtype == torch.int64 and got.shape == (len(PHILOX_KAT), 4)
        assert tuple(got[i].tolist()) == words, [hex(v) for v in got[i].tolist()]


@pytest.mark.parametrize("backend,device", ALL)
@pytest.mark.parametrize("key,offset", [(0, 0), (-1, 0), (-1, 2**32 - 1), (0x299F31D0A4093822, 7)])
def test_in_kernel_noise_is_box_muller_of_the_known_philox_words(backend, device, key, offset):
    """The whole noise path of each backend, the signed int64 key split into its words included: seed [0, 0] gives
    Box-Muller of the first known answer (counter 0, key 0) in sample 0's first four elements; other keys
    (-1: all 64 bits set) and offsets give Box-Muller of the scalar Philox's words, checked against the known
    answers above."""
    with ops.use_backend(backend):
        z = ops.normal((2, 6), seed_tensor(key, offset, device)).double().cpu()
    torch.testing.assert_close(z, scalar_stream(key, offset, 2, 6), rtol=0, atol=2e-5)
    if key == 0 and offset == 0:
        expect = torch.tensor(box_muller(PHILOX_KAT[0][2]), dtype=torch.float64)
        torch.testing.assert_close(z[0, :4], expect, rtol=0, atol=2e-5)



# ---------------------------------------------------------------------------------------------- q_sample_pairs
def _two_calls(x0, t, s, noises=None, seeds=None):
    """The true pair as the two affine_noise calls the fused op replaces: q_prev, then q_step on its output."""
    acc = reference.compute_dtype(x0.dtype)
    noises = noises or (None, None)
    seeds = seeds or (None, None)
    x_prev = _library.affine_noise(x0, None, t, s.kernel_table("q_prev", acc, x0.device), noises[0], seeds[0])
    return x_prev, _library.affine_noise(x_prev, None, t, s.kernel_table("q_step", acc, x0.device), noises[1],
                                         seeds[1])


@pytest.mark.parametrize("backend,device", ALL)
@pytest.mark.parametrize("dtype", list(DTYPES), ids=str)
@pytest.mark.parametrize("shape", [(7, 3, 5, 5), (5, 1, 1, 3), (33, 2)], ids=str)
def test_q_sample_pairs_is_the_two_calls_in_one_pass(backend, device, dtype, shape):
    """The fused pair gives the bits of q_prev then q_step (x_t from x_prev as stored, also in half precision):
    with explicit noises, with an explicit (2, 2) seed (row i the stream of noise i), and through the public
    function with a generator, which draws the two keys draw_seed would, in order (or torch.randn twice)."""
    s = Schedule.ddgan(4)
    x0 = rand(shape, device, 1, dtype)
    noises = (rand(shape, device, 2, dtype), rand(shape, device, 3, dtype))
    t = steps_for(shape[0], 4, device)
    table = s.kernel_table("q_pair", reference.compute_dtype(dtype), device)
    seeds = (seed_tensor(5, 0, device), seed_tensor(-9, 3, device))
    with ops.use_backend(backend):
        for got, expect in [(_library.q_sample_pairs(x0, t, table, *noises, None), _two_calls(x0, t, s, noises)),
                            (_library.q_sample_pairs(x0, t, table, None, None, torch.stack(seeds)),
                             _two_calls(x0, t, s, seeds=seeds))]:
            assert torch.equal(got[0], expect[0]) and torch.equal(got[1], expect[1])
        got = ops.q_sample_pairs(x0, t, s, generator=torch.Generator(device).manual_seed(4))
        gen = torch.Generator(device).manual_seed(4)
        if backend == "torch":
            expect = _two_calls(x0, t, s, noises=tuple(torch.randn(shape, generator=gen, device=device, dtype=dtype)
                                                       for _ in range(2)))
        else:
            expect = _two_calls(x0, t, s, seeds=tuple(ops.draw_seed(torch.device(device), gen) for _ in range(2)))
    assert torch.equal(got[0], expect[0]) and torch.equal(got[1], expect[1])
    assert torch.equal(got[0][t == 0], x0[t == 0])  # at t == 0 the "previous" sample is x0 itself


@pytest.mark.parametrize("backend,device", FUSED)
def test_q_sample_pairs_explicit_noise_matches_reference(backend, device):
    """Through the explicit-noise path every fused backend equals the reference's formula exactly (float64)."""
    s = Schedule.linear(30)
    x0, n1, n2 = (rand((6, 2, 7), device, k, torch.float64) for k in range(3))
    t = torch.tensor([0, 1, 5, 17, 28, 29], device=device)
    table = s.kernel_table("q_pair", torch.float64, device)
    with ops.use_backend(backend):
        got = ops.q_sample_pairs(x0, t, s, noise=(n1, n2))
    expect = reference.q_sample_pairs(x0, t, table, n1, n2)
    assert torch.equal(got[0], expect[0]) and torch.equal(got[1], expect[1])


@pytest.mark.parametrize("backend,device", FUSED)
def test_q_sample_pairs_in_kernel_noise_statistics(backend, device):
    """The in-kernel pair against the forward process's closed form, per timestep, with x0 varying per element:
    x_prev - sqrt(ab_prev) x0 ~ N(0, 1 - ab_prev), x_t - sqrt(ab) x0 ~ N(0, 1 - ab), their covariance
    sqrt(alpha) (1 - ab_prev), and the two noises uncorrelated (x_t - sqrt(alpha) x_prev is independent of x_prev)."""
    s = Schedule.linear(10)
    n, inner = 4000, 16
    x0 = rand((n, inner), device, 7).clamp(-1, 1)
    t = (torch.arange(n) % 10).to(device)
    with ops.use_backend(backend):
        x_prev, x_t = ops.q_sample_pairs(x0, t, s, generator=torch.Generator(device).manual_seed(3))
    x0, x_prev, x_t, t = (v.double().cpu() for v in (x0, x_prev, x_t, t))
    for step in range(1, 10):
        rows = t == step
        ab, ab_prev, alpha = (float(getattr(s, k)[step]) for k in ("alphas_cumprod", "alphas_cumprod_prev", "alphas"))
        e_prev = (x_prev[rows] - ab_prev**0.5 * x0[rows]).flatten()
        e_t = (x_t[rows] - ab**0.5 * x0[rows]).flatten()
        m = e_prev.numel()
        assert abs(e_prev.mean()) < 5 * ((1 - ab_prev) / m) ** 0.5
        assert abs(e_t.mean()) < 5 * ((1 - ab) / m) ** 0.5
        assert abs(e_prev.var() / (1 - ab_prev) - 1) < 5 * (2 / m) ** 0.5
        assert abs(e_t.var() / (1 - ab) - 1) < 5 * (2 / m) ** 0.5
        corr = (e_prev * e_t).mean() / ((1 - ab_prev) * (1 - ab)) ** 0.5  # closed form: the value below
        expect = alpha**0.5 * (1 - ab_prev) / ((1 - ab_prev) * (1 - ab)) ** 0.5
        assert abs(corr - expect) < 5 / m**0.5
        step_noise = (x_t[rows] - alpha**0.5 * x_prev[rows]).flatten() / (1 - alpha) ** 0.5
        assert abs((step_noise * e_prev).mean() / (1 - ab_prev) ** 0.5) < 5 / m**0.5


def test_q_sample_pairs_op_registration_and_gradients():
    """opcheck of the fused op (schema, fake kernel, autograd registration), and its gradients equal those of the
    two calls it replaces."""
    s = Schedule.ddgan(4)
    x0, n1, n2 = (rand((3, 2, 5), "cpu", k, torch.float64) for k in range(3))
    t = torch.tensor([0, 2, 3])
    table = s.kernel_table("q_pair", torch.float64, "cpu")
    for backend in ["torch"] + fused_backends("cpu"):
        with ops.use_backend(backend):
            torch.library.opcheck(_library.q_sample_pairs, (x0, t, table, None, None, torch.stack(
                (seed_tensor(1), seed_tensor(2)))))
            leaves = [v.clone().requires_grad_() for v in (x0, n1, n2)]
            torch.library.opcheck(_library.q_sample_pairs, (leaves[0], t, table, leaves[1], leaves[2], None))
            w_prev, w_t = rand((3, 2, 5), "cpu", 8, torch.float64), rand((3, 2, 5), "cpu", 9, torch.float64)
            fused = ops.q_sample_pairs(leaves[0], t, s, noise=(leaves[1], leaves[2]))
            grads = torch.autograd.grad((fused[0] * w_prev).sum() + (fused[1] * w_t).sum(), leaves)
            twice = [v.clone().requires_grad_() for v in (x0, n1, n2)]
            pair = _two_calls(twice[0], t, s, (twice[1], twice[2]))
            expect = torch.autograd.grad((pair[0] * w_prev).sum() + (pair[1] * w_t).sum(), twice)
            for got, want in zip(grads, expect):
                assert torch.equal(got, want)
