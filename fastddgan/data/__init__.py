"""Data sets for fastddgan, all scaled for diffusion (images to [-1, 1]; 2-D mixtures in their native units)."""

from .toy2d import TOY2D, Mixture2D, toy2d

__all__ = ["TOY2D", "Mixture2D", "toy2d"]
