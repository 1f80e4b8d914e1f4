"""The adversarial objectives of the per-step GAN (``js``, ``hellinger``, ``rkl``, ``tv``, ``wasserstein``) and the
discriminator regularisers (R1, WGAN-GP gradient penalty).

    from fastddgan import losses
    loss = losses.get_loss("hellinger")                 # generator_form=..., clamp=..., fused=...
    loss_d = loss.discriminator(real_logits, fake_logits)
    loss_g = loss.generator(fake_logits)
    bound = loss.divergence(real_logits, fake_logits)   # the variational divergence estimate, for logging

Conventions, closed forms, the study's slide conventions and the measured defaults:
:mod:`fastddgan.losses.objectives` (measured with ``python -m fastddgan.losses.probe``).
The batch reductions run as one fused op per call (``fastddgan.ops.gan_loss``, i.e. ``torch.ops.fastddgan.gan_loss``:
C++, CUDA or Triton, with the pure-PyTorch reference beside the op, in :mod:`fastddgan.ops.reference`). The losses
use the ops; the ops never import the losses.
"""

from ..ops import reference  # the op's reference (per-logit terms), also reachable as fastddgan.losses.reference
from .objectives import (DEFAULT_CLAMP, DEFAULT_GP_LAMBDA, DEFAULT_LOSS, DEFAULT_N_CRITIC, DIVERGENCE_CONSTANT,
                         GENERATOR_FORMS, LOSSES, FGANLoss, GANLoss, HellingerLoss, JSLoss, ReverseKLLoss,
                         TotalVariationLoss, WassersteinLoss, get_loss)
from .penalties import gradient_penalty, r1_penalty

__all__ = [
    "LOSSES", "DEFAULT_LOSS", "DEFAULT_CLAMP", "DEFAULT_GP_LAMBDA", "DEFAULT_N_CRITIC", "GENERATOR_FORMS", "get_loss",
    "DIVERGENCE_CONSTANT",
    "GANLoss", "FGANLoss", "JSLoss", "HellingerLoss", "ReverseKLLoss", "TotalVariationLoss", "WassersteinLoss",
    "r1_penalty", "gradient_penalty", "reference",
]
