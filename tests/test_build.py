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


OPS = ("affine_noise", "ddpm_step", "q_sample_pairs", "gan_loss", "philox_words")


def has_kernel(op: str, key: str) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"fastddgan::{op}", key)


def test_cpu_extension_is_built_and_chosen_on_cpu():
    """The C++ CPU extension registers a CPU kernel for every op with the dispatcher; through the op they give the
    reference's results, and its Philox the first Random123 answer."""
    import fastddgan._C  # noqa: F401 - the import registers the schemas and the CPU kernels

    assert ops.select(torch.device("cpu")) == "cpp"
    assert all(has_kernel(op, "CPU") for op in OPS)
    s = Schedule.ddgan(4)
    x, y, noise = (torch.randn(3, 5, generator=torch.Generator().manual_seed(k)) for k in range(3))
    t = torch.tensor([0, 2, 3])
    table, ddpm = s.kernel_table("posterior", torch.float32, "cpu"), s.kernel_table("ddpm_small", torch.float32, "cpu")
    fdg = torch.ops.fastddgan
    with ops.use_backend("cpp"):
        torch.testing.assert_close(fdg.affine_noise(x, y, t, table, noise, None),
                                   ops.reference.affine_noise(x, y, t, table, noise))
        torch.testing.assert_close(fdg.ddpm_step(x, y, t, ddpm, noise, None, True),
                                   ops.reference.ddpm_step(x, y, t, ddpm, noise, True))
        loss, _, grad = fdg.gan_loss(None, torch.tensor([0.0, 2.0]), 0, 1, 0.0)  # mean softplus(-V), -sigmoid(-V) / 2
        words = fdg.philox_words(torch.zeros(1, 4, dtype=torch.int64), torch.zeros(2, dtype=torch.int64))
    torch.testing.assert_close(loss, torch.tensor((math.log(2) + math.log1p(math.exp(-2))) / 2))
    torch.testing.assert_close(grad, torch.tensor([-0.25, -0.5 / (1 + math.exp(2))]))
    assert words.tolist() == [[0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]]


def test_schemas_are_declared_in_cpp_and_the_python_fallback_matches():
    """csrc/ops.cpp declares the schemas (and names the module of their fake kernels); the copy the package uses
    only where fastddgan._C cannot be imported says the same."""
    from fastddgan.ops import _library

    for name, schema in _library.FALLBACK_SCHEMAS.items():
        op = getattr(torch.ops.fastddgan, name).default
        assert str(op._schema) == f"fastddgan::{schema}"
        assert not op._defined_in_python
        assert torch._C._dispatch_pystub(f"fastddgan::{name}", "")[0] == "fastddgan.ops._library"


def _built_from(module, paths):
    """The newest source of ``module`` (files and folders under csrc/) and the module's own file, with their
    modification times."""
    sources = []
    for path in paths:
        full = os.path.join(ROOT, "csrc", path)
        sources += [os.path.join(full, name) for name in os.listdir(full)] if os.path.isdir(full) else [full]
    newest = max(sources, key=os.path.getmtime)
    return newest, os.path.getmtime(newest), module.__file__, os.path.getmtime(module.__file__)


def test_the_cpu_extension_is_not_older_than_its_sources():
    """A stale build (csrc/ edited, `pip install --no-build-isolation -e .` not rerun) is caught here, not as a
    confusing mismatch elsewhere."""
    import fastddgan._C as C

    source, source_time, built, built_time = _built_from(C, ("ops.cpp", "common", "cpu"))
    assert built_time >= source_time, f"{built} is older than {source}: rebuild the extension"


@pytest.mark.skipif(shutil.which("nvcc") is None or torch.version.cuda is None
                    or os.environ.get("FASTDDGAN_CUDA") == "0",
                    reason="needs nvcc and a CUDA build of torch (the CUDA sources are compiled at install)")
def test_cuda_sources_compiled_where_nvcc_exists():
    """On a machine with nvcc the install compiles csrc/cuda (a GPU is not needed to compile or import it): the
    module is current, its import registers a CUDA kernel for every op and, on a GPU, its Philox gives the first
    Random123 answer."""
    import fastddgan._C_cuda as C

    source, source_time, built, built_time = _built_from(C, ("common", "cuda"))
    assert built_time >= source_time, f"{built} is older than {source}: rebuild the extension"
    missing = [op for op in OPS if not has_kernel(op, "CUDA")]
    assert not missing, f"no CUDA kernel registered for {missing}"
    if torch.cuda.is_available():
        assert "cuda" in ops.available("cuda")
        with ops.use_backend("cuda"):
            words = torch.ops.fastddgan.philox_words(torch.zeros(1, 4, dtype=torch.int64, device="cuda"),
                                                     torch.zeros(2, dtype=torch.int64, device="cuda"))
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


def test_without_the_cpp_extension_the_python_backends_run_the_ops(tmp_path):
    """A fastddgan._C that cannot be imported (a torch upgraded under it) never breaks `import fastddgan`: the
    package declares the schemas itself and runs the ops on the pure-PyTorch reference, with one warning."""
    code = textwrap.dedent("""
        import sys, warnings, torch

        class NoCpp:
            def find_spec(self, name, path=None, target=None):
                if name == "fastddgan._C":
                    raise ImportError("undefined symbol (simulated)")

        sys.meta_path.insert(0, NoCpp())
        import fastddgan
        from fastddgan import ops
        x = torch.randn(2, 3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = ops.posterior_sample(x, x, torch.tensor([0, 1]), fastddgan.Schedule.ddgan(2), noise=x)
            ops.q_sample(x, 1, fastddgan.Schedule.ddgan(2))
        print("backend:", ops.select(x.device), "warnings:", len(caught), "cpp" in ops.available("cpu"))
        print("same:", torch.equal(out[0], x[0]), torch.ops.fastddgan.affine_noise.default._defined_in_python)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "backend: torch warnings: 1 False" in out.stdout
    assert "same: True True" in out.stdout


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
