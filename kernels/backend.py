"""The Triton backend as the op registry sees it: a launcher per op, named like the op (``torch.ops.fastddgan.*``)
and taking its arguments; ``fastddgan/ops/_library.py`` calls them when ``fastddgan.ops.select`` chooses Triton."""

from .losses import gan_loss
from .steps import affine_noise, ddpm_step, philox_words, q_sample_pairs

__all__ = ["affine_noise", "ddpm_step", "gan_loss", "philox_words", "q_sample_pairs"]
