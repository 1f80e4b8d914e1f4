"""Networks for DDPM and DDGAN, written from the papers' descriptions.

- :class:`UNet`: DDPM eps/x0/v model; with ``nz`` the DDGAN generator core (mapping MLP + adaptive GroupNorm).
- :class:`DDGANGenerator` G(x_t, z, t[, y]) -> x0 in [-1, 1]; :class:`DDGANDiscriminator`
  D(x_{t-1}, x_t, t[, y]) -> (B,) logits (contracting half of the U-Net, no cross-sample coupling by default).
- :class:`ToyGenerator`, :class:`ToyDiscriminator`, :class:`ToyDenoiser`: MLPs for 2-D data, same interfaces.
- :data:`PRESETS`, :func:`preset`, :func:`build`: named configurations (``mnist``, ``mnist5k``, ``fashion-mnist``,
  ``cifar10``, ``tiny``, ``toy2d``).

Conditioning: ``t`` is an int64 tensor (B,) of timestep indices; with ``num_classes`` the label table has a
reserved null class at index ``num_classes`` (classifier-free guidance), used when ``y=None``. 28x28 images run
natively (28 -> 14 -> 7), no padding.
"""

from .ddgan import DDGANDiscriminator, DDGANGenerator
from .embeddings import ConditionEmbedding, MappingNetwork, SinusoidalEmbedding
from .layers import AttentionBlock, ResBlock
from .presets import PRESETS, ROLES, build, preset
from .toy import ToyDenoiser, ToyDiscriminator, ToyGenerator
from .unet import Encoder, UNet

__all__ = [
    "UNet", "Encoder", "DDGANGenerator", "DDGANDiscriminator",
    "ToyGenerator", "ToyDiscriminator", "ToyDenoiser",
    "PRESETS", "ROLES", "preset", "build",
    "SinusoidalEmbedding", "ConditionEmbedding", "MappingNetwork", "ResBlock", "AttentionBlock",
]
