"""Property-based fuzzing (hypothesis) of the ops and of the training command line, so that the next adversarial
pass finds nothing new: every call either gives the pure-PyTorch reference's result or a one-line ValueError /
TypeError naming the argument; every command line exits 0 or 2 with one line, never with a traceback.

Kept small (a few dozen examples each, no deadline): the whole file runs in well under 30 s on one CPU thread.
"""

import math
import os
import re
import tempfile

import pytest
import torch

from backend_cases import fused_backends
from fastddgan import Schedule, ops
from fastddgan.ops import philox_normal, reference

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
TOL = {torch.float32: 1e-5, torch.float64: 1e-12, torch.float16: 2e-3, torch.bfloat16: 2e-2}
ARGUMENT = re.compile(r"^(x0|x_t|eps|t|noise|noise\[[01]\]|seed|schedule|generator|variance|shape|dtype): \S")
SCHEDULES = {"ddgan": Schedule.ddgan, "linear": Schedule.linear, "cosine": Schedule.cosine}


# ---------------------------------------------------------------------------------------------- the ops
# What a case may get wrong, and the error it must then raise (type, start of the message).
FAULTS = {
    None: None,
    "t too large": (ValueError, "t: expected values in [0, T="),
    "t negative": (ValueError, "t: expected values in [0, T="),
    "int t out of range": (ValueError, "t: expected a timestep in [0, T="),
    "t float": (TypeError, "t: expected an integer tensor"),
    "t wrong length": (ValueError, "t: expected shape"),
    "t bool": (TypeError, "t: expected an integer tensor of timesteps, got bool"),
    "second tensor of other dtype": (TypeError, "expected dtype"),
    "second tensor of other shape": (ValueError, "expected shape"),
    "noise of other shape": (ValueError, "expected shape ("),  # noise, or noise[0] of q_sample_pairs
    "noise not a tensor": (TypeError, "expected a torch.Tensor, got list"),
    "sparse data": (TypeError, "expected a dense tensor, got a sparse_coo tensor"),
    "integer data": (TypeError, "expected a floating-point tensor"),
    "seed of other shape": (TypeError, "seed: expected an int64 tensor [key, sample_offset] of shape (2,)"),
    "seed and noise": (ValueError, "seed: give either noise or seed, not both"),
    "schedule name": (TypeError, "schedule: expected a fastddgan.Schedule"),
    "generator not one": (TypeError, "generator: expected a torch.Generator or None"),
}


@st.composite
def op_cases(draw):
    backend = draw(st.sampled_from(["torch"] + fused_backends("cpu")))
    op = draw(st.sampled_from(["q_sample", "q_sample_pairs", "posterior_sample", "ddpm_step"]))
    dtype = draw(st.sampled_from(DTYPES))
    batch = draw(st.integers(0, 4))
    inner = tuple(draw(st.lists(st.integers(1 if backend == "triton" else 0, 5), max_size=3)))
    T = draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["linear", "cosine"] if op == "ddpm_step" else ["ddgan", "linear", "cosine"]))
    steps = draw(st.lists(st.integers(0, T - 1), min_size=batch, max_size=batch))
    # data, with some non-finite values (they must come out where the reference has them)
    values = st.one_of(st.floats(-5, 5, width=32), st.sampled_from([float("nan"), float("inf"), -float("inf")]))
    flat = draw(st.lists(values, min_size=3, max_size=3 * 16))
    random = draw(st.sampled_from(["noise", "seed"]))
    key = draw(st.integers(-2**63, 2**63 - 1))
    offset = draw(st.integers(0, 2**40))
    fault = draw(st.sampled_from(list(FAULTS)))
    return dict(backend=backend, op=op, dtype=dtype, shape=(batch, *inner), T=T, kind=kind, steps=steps,
                flat=flat, random=random, key=key, offset=offset, fault=fault,
                variance=draw(st.sampled_from(["small", "large"])), clip=draw(st.booleans()),
                int_t=draw(st.booleans()) and batch > 0)


def _tensors(case):
    shape, dtype = case["shape"], case["dtype"]
    n = math.prod(shape)
    flat = torch.tensor(case["flat"], dtype=torch.float64)
    pool = flat.repeat(3 * n // flat.numel() + 1)
    a, b, noise = (pool[i * n:(i + 1) * n].view(shape).to(dtype) for i in range(3))
    return a, b, noise


def _call(case, a, b, noise, t, schedule, seed, generator=None):
    op, variance, clip = case["op"], case["variance"], case["clip"]
    if op == "q_sample":
        return ops.q_sample(a, t, schedule, noise=noise, generator=generator)
    if op == "q_sample_pairs":
        pair = None if noise is None else (noise, b if case["fault"] != "noise of other shape" else noise)
        return ops.q_sample_pairs(a, t, schedule, noise=pair, generator=generator)
    if op == "posterior_sample":
        return ops.posterior_sample(a, b, t, schedule, noise=noise, seed=seed, generator=generator)
    return ops.ddpm_step(a, b, t, schedule, noise=noise, seed=seed, variance=variance, clip_x0=clip,
                         generator=generator)


def _expected(case, a, b, noise, t, schedule):
    """The reference result of a valid case (noise: the explicit noise, or the Philox stream of the seed)."""
    op, acc = case["op"], ops.compute_dtype(case["dtype"])
    t = t.long() if isinstance(t, torch.Tensor) else torch.full((a.shape[0],), t, dtype=torch.long)
    if noise is None:
        noise = philox_normal(ops.seed_tensor(case["key"], case["offset"]), a.shape[0],
                              a[0].numel() if a.shape[0] else 0).view(a.shape)
    if op == "q_sample":
        return reference.affine_noise(a, None, t, schedule.kernel_table("q_sample", acc, "cpu"), noise)
    if op == "q_sample_pairs":
        prev = reference.affine_noise(a, None, t, schedule.kernel_table("q_prev", acc, "cpu"), noise)
        return prev, reference.affine_noise(prev, None, t, schedule.kernel_table("q_step", acc, "cpu"), b)
    if op == "posterior_sample":
        return reference.affine_noise(a, b, t, schedule.kernel_table("posterior", acc, "cpu"), noise)
    table = schedule.kernel_table(f"ddpm_{case['variance']}", acc, "cpu")
    return reference.ddpm_step(a, b, t, table, noise, case["clip"])


def _apply_fault(case, a, b, noise, t, schedule, seed, generator):
    fault, T = case["fault"], case["T"]
    if fault == "t too large":
        t = t.clone() if isinstance(t, torch.Tensor) else torch.full((a.shape[0],), t)
        t[-1] = T + case["T"]
    elif fault == "t negative":
        t = t.clone() if isinstance(t, torch.Tensor) else torch.full((a.shape[0],), t)
        t[0] = -1
    elif fault == "int t out of range":
        t = T
    elif fault == "t float":
        t = torch.zeros(a.shape[0])
    elif fault == "t wrong length":
        t = torch.zeros(a.shape[0] + 1, dtype=torch.long)
    elif fault == "t bool":
        t = True
    elif fault == "second tensor of other dtype":
        b = b.to(torch.float64 if a.dtype != torch.float64 else torch.float32)
    elif fault == "second tensor of other shape":
        b = torch.zeros(a.shape[0] + 1, *a.shape[1:], dtype=a.dtype)
    elif fault == "noise of other shape":
        noise = torch.zeros(a.shape[0] + 1, *a.shape[1:], dtype=a.dtype)
    elif fault == "noise not a tensor":
        noise = [0.0] * max(a.shape[0], 1)
    elif fault == "sparse data":
        a = a.to_sparse()
    elif fault == "integer data":
        a = a.nan_to_num().long()
    elif fault == "seed of other shape":
        seed, noise = torch.tensor([1, 2, 3]), None
    elif fault == "seed and noise":
        seed = ops.seed_tensor(1)
        noise = noise if noise is not None else torch.zeros_like(a)
    elif fault == "schedule name":
        schedule = case["kind"]
    elif fault == "generator not one":
        generator = 5
    return a, b, noise, t, schedule, seed, generator


def _applies(case) -> bool:
    """Whether the case's fault means anything for its op (q_sample has no second tensor, only two ops take a
    seed, a fault in t needs a sample to put it in, ...)."""
    fault, op, batch = case["fault"], case["op"], case["shape"][0]
    if fault in ("second tensor of other dtype", "second tensor of other shape"):
        return op in ("posterior_sample", "ddpm_step")
    if fault in ("seed of other shape", "seed and noise"):
        return op in ("posterior_sample", "ddpm_step")
    if fault in ("t too large", "t negative", "int t out of range"):
        return batch > 0
    if fault == "noise of other shape":
        return case["random"] == "noise" or op == "q_sample_pairs"
    return True


@FUZZ
@given(op_cases())
def test_ops_give_the_reference_result_or_one_line_naming_the_argument(case):
    a, b, noise = _tensors(case)
    schedule = SCHEDULES[case["kind"]](case["T"])
    steps = torch.tensor(case["steps"], dtype=torch.long)
    t = case["steps"][0] if case["int_t"] and len(set(case["steps"])) == 1 else steps
    seed = None
    if case["random"] == "seed" and case["op"] in ("posterior_sample", "ddpm_step"):
        seed, noise = ops.seed_tensor(case["key"], case["offset"]), None
    elif case["op"] == "q_sample_pairs" and case["random"] == "seed":
        noise = None  # no seed argument: the generator's stream, compared below by shape only
    if not _applies(case):
        case["fault"] = None
    valid = (a, b, noise, t, schedule)
    a, b, noise, t, schedule, seed, generator = _apply_fault(case, a, b, noise, t, schedule, seed, None)
    with ops.use_backend(case["backend"]):
        try:
            got = _call(case, a, b, noise, t, schedule, seed, generator)
        except (ValueError, TypeError) as err:
            message = str(err)
            assert case["fault"] is not None, f"a valid case was refused: {message}"
            error, start = FAULTS[case["fault"]]
            assert isinstance(err, error) and start in message and "\n" not in message, (case["fault"], message)
            assert ARGUMENT.match(message), message
            return
    assert case["fault"] is None, f"{case['fault']} was accepted"
    if case["op"] == "q_sample_pairs" and valid[2] is None:
        assert all(x.shape == a.shape and x.dtype == a.dtype for x in got)
        return
    expect = _expected(case, *valid)
    for g, e in zip(got, expect) if isinstance(got, tuple) else [(got, expect)]:
        assert g.shape == e.shape and g.dtype == e.dtype and g.is_contiguous()
        tol = TOL[case["dtype"]]
        atol = max(10 * tol, 2e-5) if seed is not None else tol  # in-kernel normals are float32 (fast log, sin)
        torch.testing.assert_close(g, e, rtol=tol, atol=atol, equal_nan=True)


@FUZZ
@given(st.data())
def test_ops_take_any_python_value_without_crashing(data):
    """Arguments of any Python type: a result, or a one-line ValueError / TypeError naming the argument."""
    junk = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                     st.text(max_size=5), st.lists(st.floats(-2, 2, width=32), max_size=4),
                     st.builds(torch.zeros, st.integers(0, 3)), st.builds(torch.zeros, st.integers(0, 3), st.just(2)),
                     st.just(torch.zeros(2, 2, dtype=torch.long)), st.just(Schedule.ddgan(2)),
                     st.just(torch.Generator()), st.just(torch.zeros(2, 3).to_sparse()))
    x = torch.zeros(2, 3)
    names = ["x0", "t", "schedule", "noise", "generator"]
    args = {"x0": x, "t": torch.tensor([0, 1]), "schedule": Schedule.ddgan(2), "noise": None, "generator": None}
    bad = data.draw(st.sampled_from(names))
    args[bad] = data.draw(junk)
    try:
        out = ops.q_sample(args["x0"], args["t"], args["schedule"], noise=args["noise"],
                           generator=args["generator"])
    except (ValueError, TypeError) as err:
        assert ARGUMENT.match(str(err)) and "\n" not in str(err), str(err)
        return
    assert isinstance(out, torch.Tensor) and out.shape == args["x0"].shape


# ---------------------------------------------------------------------------------------------- the training CLI
JUNK = st.one_of(st.integers(-10**25, 10**25).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8),
                 st.sampled_from(["", "-0", "0x10", "1e300", "nan", "inf", "-inf", "auto", "none"]))
FUZZED = ["model", "dataset", "T", "schedule", "prediction", "loss", "generator_form", "gp_lambda", "n_critic", "cond",
          "p_uncond", "steps", "epochs", "batch_size", "lr_g", "lr_d", "lr", "adam_beta2", "lr_decay", "r1_gamma",
          "lazy_reg", "ema_decay", "nz", "hflip", "amp", "seed", "threads", "resume", "sample_every", "sample_n",
          "sample_steps", "ckpt_every", "keep", "log_every", "max_nonfinite", "num_workers", "device", "preset",
          "image_size", "channels", "diffaug"]
DATASETS = ("ring8", "grid25", "swissroll")


def _plausible(opt):
    """Values of the option's type that are often valid (so that many runs get as far as building the model)."""
    if opt.name == "dataset":
        return st.sampled_from(DATASETS)
    if opt.name == "resume":
        return st.just("auto")
    if opt.choices:
        return st.sampled_from(list(opt.choices))
    if opt.type is int:
        return st.integers(0, 6).map(str)
    if opt.type is float:
        return st.floats(0.0, 1.0).map(repr)
    return st.text(max_size=3)


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_training_command_line_exits_0_or_2_with_one_line(data):
    """Any flag values on top of a valid 2-D run: the run is set up (data, config, folder lock, model and
    optimisers; the training loop itself is not run here) and exits 0, or it exits 2 with one line. Never a
    traceback."""
    rc, text = _run_cli(_random_flags(data, junk=True), train_loop=False)
    hypothesis.event(f"exit {rc}")


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_short_trainings_with_random_flags_finish_or_exit_2(data):
    """The same with the training loop run (2 steps, then the checkpoint, samples and export): values that pass
    the checks must also train."""
    flags = [f for f in _random_flags(data, junk=False) if not f.startswith(("--steps=", "--epochs="))]
    rc, text = _run_cli(flags + ["--steps", "2"], train_loop=True)
    hypothesis.event(f"exit {rc}")


def _random_flags(data, junk: bool):
    from fastddgan.train import config as train_config

    argv = []
    for name in data.draw(st.lists(st.sampled_from(FUZZED), max_size=4), label="flags"):
        opt = train_config.BY_NAME[name]
        flag = "--T" if name == "T" else "--" + name.replace("_", "-")
        if opt.type is bool:
            argv.append(flag if data.draw(st.booleans()) else "--no-" + flag[2:])
            continue
        values = st.one_of(_plausible(opt), _plausible(opt), _plausible(opt), JUNK) if junk else _plausible(opt)
        value = data.draw(values, label=name)
        if name == "dataset" and value not in DATASETS:
            value = "nope-" + value  # never an image set: it might be downloaded
        argv.append(f"{flag}={value}")
    return argv


def _run_cli(flags, train_loop: bool):
    """(exit status, stderr) of python -m fastddgan.train on 2-D data with ``flags``; without ``train_loop`` the
    run is set up (data, config, folder lock, model, optimisers) but not trained. Asserts 0, or 2 with one line."""
    import contextlib
    import io

    from fastddgan.train import loop, main

    argv = ["--dataset", "ring8", "--sample-every", "0", "--sample-n", "64", *flags]
    with tempfile.TemporaryDirectory() as tmp:
        argv += ["--out", os.path.join(tmp, "run"), "--data-dir", tmp]
        err = io.StringIO()
        real_fit = loop.Trainer.fit
        if not train_loop:
            loop.Trainer.fit = lambda self: self.run.close()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    rc = main(argv)
                except SystemExit as exit_:  # argparse
                    rc = exit_.code
        finally:
            loop.Trainer.fit = real_fit
    text = err.getvalue()
    assert rc in (0, 2), (argv, rc, text)
    lines = [line for line in text.splitlines() if not line.startswith("warning:")]
    assert rc == 0 and not lines or rc == 2 and len(lines) == 1, (argv, text)
    assert "Traceback" not in text
    return rc, text
