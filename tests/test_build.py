"""The build and the graceful degradation of optional parts."""

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


def test_cpu_extension_is_built_and_chosen_on_cpu():
    import fastddgan._C as C

    assert hasattr(C, "affine_noise") and hasattr(C, "ddpm_step")
    assert ops.select(torch.device("cpu")) == "cpp"


@pytest.mark.skipif(shutil.which("nvcc") is None or torch.version.cuda is None
                    or os.environ.get("FASTDDGAN_CUDA") == "0",
                    reason="needs nvcc and a CUDA build of torch (the CUDA sources are compiled at install)")
def test_cuda_sources_compiled_where_nvcc_exists():
    """On a machine with nvcc the install compiles csrc/cuda (a GPU is not needed to compile or import it)."""
    import fastddgan._C_cuda as C

    assert hasattr(C, "affine_noise") and hasattr(C, "ddpm_step")
    assert "cuda" in ops.available("cuda")


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
    assert fastddgan.__version__
    assert callable(ops.posterior_sample) and callable(ops.q_sample_pairs) and callable(ops.ddpm_step)
    assert set(ops.BACKENDS) == {"torch", "cpp", "cuda", "triton"}
