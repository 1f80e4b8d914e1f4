"""The Triton backend as the op registry sees it (``fastddgan/ops/_backends.py``): every fused op's launcher (and
``philox_words``, the raw Philox words, for the known-answer tests)."""

from .losses import gan_loss
from .steps import affine_noise, ddpm_step, philox_words

__all__ = ["affine_noise", "ddpm_step", "gan_loss", "philox_words"]
