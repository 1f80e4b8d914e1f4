"""fastddgan: Denoising Diffusion GANs and DDPM for PyTorch, with fused C++/CUDA/Triton ops.

    import fastddgan
    schedule = fastddgan.Schedule.ddgan(T=4)
    x_prev = fastddgan.ops.posterior_sample(x0, x_t, t, schedule)

See :class:`fastddgan.Schedule` for the index convention used throughout.
"""

from . import ops
from .schedule import Schedule

__version__ = "0.1.0"
__all__ = ["Schedule", "ops", "__version__"]
