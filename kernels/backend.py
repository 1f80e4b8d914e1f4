"""The Triton backend as the op registry sees it (``fastddgan/ops/_backends.py``): every fused op's launcher."""

from .losses import gan_loss
from .steps import affine_noise, ddpm_step

__all__ = ["affine_noise", "ddpm_step", "gan_loss"]
