"""The build and the graceful degradation of optional parts."""

import math
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

import fastddgan
from fastddgan import Schedule, ops
from fastddgan.ops import _backends

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cpu_extension_is_built_and_chosen_on_cpu():
    """The C++ CPU extension runs: its ops give the reference's results, its Philox the first Random123 answer."""
    import fastddgan._C as C

    assert ops.select(torch.device("cpu")) == "cpp"
    s = Schedule.ddgan(4)
    x, y, noise = (torch.randn(3, 5, generator=torch.Generator().manual_seed(k)) for k in range(3))
    t = torch.tensor([0, 2, 3])
    table, ddpm = s.kernel_table("posterior", torch.float32, "cpu"), s.kernel_table("ddpm_small", torch.float32, "cpu")
    torch.testing.assert_close(C.affine_noise(x, y, t, table, noise, None),
                               ops.reference.affine_noise(x, y, t, table, noise))
    torch.testing.assert_close(C.ddpm_step(x, y, t, ddpm, noise, None, True),
                               ops.reference.ddpm_step(x, y, t, ddpm, noise, True))
    loss, _, grad = C.gan_loss(None, torch.tensor([0.0, 2.0]), 0, 1, 0.0)  # mean softplus(-V), -sigmoid(-V) / 2
    torch.testing.assert_close(loss, torch.tensor((math.log(2) + math.log1p(math.exp(-2))) / 2))
    torch.testing.assert_close(grad, torch.tensor([-0.25, -0.5 / (1 + math.exp(2))]))
    words = C.philox_words(torch.zeros(1, 4, dtype=torch.int64), torch.zeros(2, dtype=torch.int64))
    assert words.tolist() == [[0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]]


def _built_from(module, folders):
    """The newest source of ``module`` and the module's own file, with their modification times."""
    sources = [os.path.join(ROOT, "csrc", folder, name) for folder in folders
               for name in os.listdir(os.path.join(ROOT, "csrc", folder))]
    newest = max(sources, key=os.path.getmtime)
    return newest, os.path.getmtime(newest), module.__file__, os.path.getmtime(module.__file__)


def test_the_cpu_extension_is_not_older_than_its_sources():
    """A stale build (csrc/ edited, `pip install --no-build-isolation -e .` not rerun) is caught here, not as a
    confusing mismatch elsewhere."""
    import fastddgan._C as C

    source, source_time, built, built_time = _built_from(C, ("common", "cpu"))
    assert built_time >= source_time, f"{built} is older than {source}: rebuild the extension"


@pytest.mark.skipif(shutil.which("nvcc") is None or torch.version.cuda is None
                    or os.environ.get("FASTDDGAN_CUDA") == "0",
                    reason="needs nvcc and a CUDA build of torch (the CUDA sources are compiled at install)")
def test_cuda_sources_compiled_where_nvcc_exists():
    """On a machine with nvcc the install compiles csrc/cuda (a GPU is not needed to compile or import it): the
    module is current, its entry points run their argument checks (CPU tensors refused, naming the device) and,
    on a GPU, its Philox gives the first Random123 answer."""
    import fastddgan._C_cuda as C

    source, source_time, built, built_time = _built_from(C, ("common", "cuda"))
    assert built_time >= source_time, f"{built} is older than {source}: rebuild the extension"
    x, t = torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)
    counters, key = torch.zeros(1, 4, dtype=torch.int64), torch.zeros(2, dtype=torch.int64)
    for call in (lambda: C.affine_noise(x, None, t, torch.zeros(3, 1), None, torch.zeros(2, dtype=torch.long)),
                 lambda: C.ddpm_step(x, x, t, torch.zeros(5, 1), x, None, True),
                 lambda: C.gan_loss(None, torch.zeros(3), 0, 1, 0.0),
                 lambda: C.philox_words(counters, key)):
        with pytest.raises(RuntimeError, match="expected (tensors|logits|counters) on cuda"):
            call()
    if torch.cuda.is_available():
        assert "cuda" in ops.available("cuda")
        words = C.philox_words(counters.cuda(), key.cuda())
        assert words.tolist() == [[0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]]


def test_missing_fused_backend_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setitem(_backends._MODULES, "cpp", "fastddgan._not_built")
    monkeypatch.setattr(_backends, "_loaded", {})
    monkeypatch.setattr(_backends, "_load_errors", {})
    monkeypatch.setattr(_backends, "_warned", False)
    x = torch.zeros(2, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = ops.posterior_sample(x, x, 0, Schedule.ddgan(2))
        ops.posterior_sample(x, x, 1, Schedule.ddgan(2))
    assert torch.equal(out, x)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "fastddgan._not_built could not be imported" in messages[0]
    assert ops.select(torch.device("cpu")) == "torch"


def test_import_survives_a_broken_triton(tmp_path):
    """A missing or broken optional part never breaks `import fastddgan`; forcing it gives a clear error."""
    fake = tmp_path / "triton"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('triton is broken here')\n")
    code = textwrap.dedent("""
        import warnings, torch
        warnings.simplefilter("error")
        import fastddgan
        from fastddgan import ops
        x = torch.zeros(2, 3)
        ops.posterior_sample(x, x, 0, fastddgan.Schedule.ddgan(2))
        print("cuda backends:", [b for b in ops.available("cuda") if b == "triton"])
        ops.set_backend("triton")
        try:
            ops.posterior_sample(x, x, 0, fastddgan.Schedule.ddgan(2))
        except RuntimeError as err:
            print("error:", err)
    """)
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               TRITON_INTERPRET="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "cuda backends: []" in out.stdout
    assert "backend 'triton' was requested but fastddgan.kernels.backend could not be imported" in out.stdout
    assert "triton is broken here" in out.stdout


def test_version_and_public_api():
    """The version is setup.py's, and every name the package and the ops export is there."""
    with open(os.path.join(ROOT, "setup.py")) as f:
        assert f'version="{fastddgan.__version__}"' in f.read()
    for module in (fastddgan, ops):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, (module.__name__, missing)
    assert set(ops.BACKENDS) == {"torch", "cpp", "cuda", "triton"}
