"""Triton kernels of fastddgan, installed as ``fastddgan.kernels``: ``steps`` (affine_noise, ddpm_step) and ``losses``
(gan_loss); ``backend`` gathers them into the ``triton`` backend of ``fastddgan.ops`` (imported only where Triton
can run)."""
