"""Build of fastddgan and its C++/CUDA extensions.

    pip install --no-build-isolation -e .      # torch must already be installed

Extensions (no Python bindings: importing one registers its kernels with the PyTorch dispatcher, torch.ops.fastddgan)
    fastddgan._C       the op schemas (csrc/ops.cpp) and the C++ CPU kernels (csrc/cpu), always built.
    fastddgan._C_cuda  the CUDA kernels (csrc/cuda), built when a CUDA toolkit is found and torch is a CUDA build.

Switches (environment variables)
    FASTDDGAN_CUDA=0|1       force the CUDA extension off / on (on: a failure is an error). Default: auto, where a
                             failed CUDA build only warns and the package falls back to the other backends.
    TORCH_CUDA_ARCH_LIST     GPU architectures; default: the visible GPUs', or DEFAULT_ARCHS when none is visible.
    CUDA_HOME                toolkit root; default: found from the real location of `nvcc` (the nvcc on PATH may
                             be a wrapper script that execs the real one).
    MAX_JOBS                 parallel compile jobs (ninja).
"""

import os
import re
import shutil
import subprocess
import sys
import warnings

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ARCHS = "8.0;8.6;9.0+PTX"


def find_cuda_home():
    """The CUDA toolkit root, or None: $CUDA_HOME/$CUDA_PATH, then the toolkit that `nvcc` really runs."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home and os.path.exists(os.path.join(home, "bin", "nvcc")):
            return home
    nvcc = shutil.which("nvcc")
    if nvcc:
        real = os.path.realpath(nvcc)
        home = os.path.dirname(os.path.dirname(real))
        if os.path.exists(os.path.join(home, "include", "cuda.h")):
            return home
        try:  # a wrapper script: ask nvcc where its toolkit is (it prints "#$ TOP=<root>/bin/..")
            out = subprocess.run([nvcc, "--dryrun", "--version"], capture_output=True, text=True, timeout=60)
            match = re.search(r"TOP=(\S+)", out.stdout + out.stderr)
            if match:
                home = os.path.normpath(os.path.join(match.group(1), ".."))
                if os.path.exists(os.path.join(home, "bin", "nvcc")):
                    return home
        except (OSError, subprocess.SubprocessError):
            pass
    default = "/usr/local/cuda"
    return default if os.path.exists(os.path.join(default, "bin", "nvcc")) else None


def cuda_wanted():
    """(build_cuda, required) from FASTDDGAN_CUDA and what this machine has."""
    flag = os.environ.get("FASTDDGAN_CUDA", "auto").strip().lower()
    if flag not in ("0", "1", "auto", ""):
        sys.exit(f"FASTDDGAN_CUDA: expected 0, 1 or auto, got {flag!r}")
    if flag == "0":
        return False, False
    import torch

    home = find_cuda_home()
    if torch.version.cuda is None or home is None:
        if flag == "1":
            sys.exit("FASTDDGAN_CUDA=1 but " + ("torch is a CPU-only build" if torch.version.cuda is None
                                                else "no CUDA toolkit (nvcc) was found; set CUDA_HOME"))
        return False, False
    os.environ["CUDA_HOME"] = home  # before torch.utils.cpp_extension reads it
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCHS  # no GPU visible: build for common ones
    return True, flag == "1"


def sources(folder, *suffixes):
    path = os.path.join("csrc", folder)
    return sorted(os.path.join(path, f) for f in os.listdir(os.path.join(ROOT, path)) if f.endswith(suffixes))


def extensions(build_cuda):
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    openmp = [] if sys.platform == "darwin" else ["-fopenmp"]
    # -fno-math-errno / -fno-trapping-math let the noise loops vectorise; -ffp-contract=off keeps a*b+c two roundings
    # in every clone (gcc fused them into FMAs in the AVX-512 clone of Box-Muller only, so the same seed gave other
    # bits on CPUs with and without AVX-512); Box-Muller's polynomials ask for their FMAs explicitly (philox.h)
    cxx = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", *openmp]
    exts = [CppExtension("fastddgan._C", [os.path.join("csrc", "ops.cpp")] + sources("cpu", ".cpp"),
                         extra_compile_args={"cxx": cxx}, extra_link_args=openmp)]
    if build_cuda:
        # IEEE math, no --use_fast_math: that flushes denormals to zero and approximates exp, log, division and sqrt
        # (the loss terms and Box-Muller); tests/test_losses.py holds the float32 loss terms to a few ulp.
        # -fmad=false: a*b+c in two roundings as in the C++ build (-ffp-contract=off; explicit fmaf calls stay FMAs)
        # and the reference's separate ops, so q_sample_pairs gives the bits of its two calls and the explicit-noise
        # paths equal the reference (nvcc contracted them into FMAs differently per kernel: seen on the first GPU
        # run, an H200)
        exts.append(CUDAExtension("fastddgan._C_cuda", sources("cuda", ".cpp", ".cu"),
                                  extra_compile_args={"cxx": ["-O3"], "nvcc": ["-O3", "-fmad=false"]}))
    return exts


def build_ext_class(cuda_required):
    from torch.utils.cpp_extension import BuildExtension

    class FastDDGANBuild(BuildExtension):
        """Turns a failed optional CUDA build into one warning (and drops it); the CPU extension must build."""

        def build_extensions(self):
            self._failed = []
            super().build_extensions()
            self.extensions = [ext for ext in self.extensions if ext not in self._failed]

        def build_extension(self, ext):
            if ext.name != "fastddgan._C_cuda" or cuda_required:
                return super().build_extension(ext)
            try:
                super().build_extension(ext)
            except Exception as err:  # noqa: BLE001 - any compiler/toolchain failure
                self._failed.append(ext)
                warnings.warn(f"fastddgan: the CUDA extension failed to build and is skipped ({err}); "
                              "set FASTDDGAN_CUDA=1 to make this an error.")

    return FastDDGANBuild.with_options(use_ninja=shutil.which("ninja") is not None or _has_ninja_module())


def _has_ninja_module():
    try:
        import ninja  # noqa: F401

        return True
    except ImportError:
        return False


build_cuda, cuda_required = cuda_wanted()

setup(
    name="fastddgan",
    version="0.1.0",
    description="Fast Denoising Diffusion GANs and DDPM for PyTorch: fused C++/CUDA/Triton ops",
    packages=find_packages(include=["fastddgan", "fastddgan.*"]) + ["fastddgan.kernels"],
    package_dir={"fastddgan.kernels": "kernels"},
    python_requires=">=3.9",
    # torchvision (data downloads, PNG grids) is not listed: it pins one torch version; install the one matching
    # your torch (pip install torch==X torchvision==Y), as the README does.
    install_requires=["torch>=2.4", "numpy", "tqdm", "pyyaml", "safetensors", "pillow"],
    extras_require={
        "triton": ["triton"],
        "eval": ["torchmetrics", "torch-fidelity", "scipy"],
        "plots": ["matplotlib"],  # labelled scatter plots and training curves (Pillow draws simpler ones without)
        "test": ["pytest", "pytest-benchmark", "pytest-xdist", "hypothesis", "ninja", "pybind11"],
        # contenders that benchmarks/bench_contenders.py times when installed (the cases skip without them)
        "bench": ["pytest-benchmark", "diffusers"],
    },
    ext_modules=extensions(build_cuda),
    cmdclass={"build_ext": build_ext_class(cuda_required)},
    zip_safe=False,
)
