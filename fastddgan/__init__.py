"""fastddgan: Denoising Diffusion GANs and DDPM for PyTorch, with fused C++/CUDA/Triton ops.

    import fastddgan
    G, D = fastddgan.models.build("mnist", "generator"), fastddgan.models.build("mnist", "discriminator")
    model = fastddgan.DDGAN(G, D, schedule=4, loss="js")
    model.train_step(x0)               # x0: a batch of images in [-1, 1]
    images = model.sample(64)

See :class:`fastddgan.Schedule` for the index convention used throughout.
"""

from . import data, losses, models, ops
from .ddgan import DDGAN
from .ddpm import DDPM
from .ema import EMA
from .losses import LOSSES, get_loss
from .sampling import sample
from .schedule import Schedule

__version__ = "0.1.0"
__all__ = ["Schedule", "DDPM", "DDGAN", "EMA", "LOSSES", "get_loss", "sample", "ops", "losses", "models", "data",
           "__version__"]
