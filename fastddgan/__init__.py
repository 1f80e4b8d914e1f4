"""fastddgan: Denoising Diffusion GANs and DDPM for PyTorch, with fused C++/CUDA/Triton ops.

    import fastddgan
    model = fastddgan.from_preset("ddgan", "mnist", schedule=4, loss="js")   # or DDGAN(G, D, ...) by hand
    model.train_step(x0)                        # x0: a batch of images in [-1, 1]
    fastddgan.save(model, "ckpt.pt")
    images = fastddgan.sample("ckpt.pt", n=64, seed=0)

See :class:`fastddgan.Schedule` for the index convention used throughout.
"""

from . import checkpoint, data, family, losses, models, ops
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
