"""fastddgan: Denoising Diffusion GANs and DDPM for PyTorch, with fused C++/CUDA/Triton ops.

    import fastddgan
    model = fastddgan.from_preset("ddgan", "mnist", schedule=4, loss="js")   # or DDGAN(G, D, ...) by hand
    model.train_step(x0)                        # x0: a batch of images in [-1, 1]
    fastddgan.save(model, "ckpt.pt")
    images = fastddgan.sample("ckpt.pt", n=64, seed=0)

See :class:`fastddgan.Schedule` for the index convention used throughout.

Importing fastddgan sets ``MKL_CBWR=AUTO,STRICT`` unless it is set already: results that do not depend on the
number of CPU threads (the 2-D trainer picks 1 or 2 by the machine's load, and a run must be reproducible from its
seed). Intel's MKL, unlike its path on AMD CPUs, sums some small GEMMs in another order with 2 threads (e.g. the toy
networks' (4 x 128) @ (128 x 384) conditioning layer at T = 4); its strict reproducibility mode does not. MKL reads
the variable at its first call, so a process that used MKL before importing fastddgan (a float64 ``cos`` is enough)
keeps its own mode. Cost measured on a busy 2-core Xeon (ring8 DDGAN, 1 thread, 3 interleaved runs each): 64.0
against 67.1 it/s without it, within the runs' spread (62-72).
"""

import os

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")  # before any torch computation of ours: see the docstring

from . import checkpoint, data, family, losses, models, ops  # noqa: E402
from .checkpoint import from_preset, load, save
from .ddgan import DDGAN
from .ddpm import DDPM
from .ema import EMA
from .losses import LOSSES, get_loss
from .sampling import sample
from .schedule import Schedule
from .train_state import TrainState

__version__ = "0.1.0"
__all__ = ["Schedule", "DDPM", "DDGAN", "EMA", "TrainState", "LOSSES", "get_loss", "sample", "save", "load",
           "from_preset", "ops", "losses", "models", "data", "checkpoint", "family", "__version__"]
