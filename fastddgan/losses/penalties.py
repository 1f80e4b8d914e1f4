"""Gradient regularisers of the discriminator: R1 (any f-GAN) and the WGAN-GP gradient penalty (Wasserstein).

Both differentiate V with respect to the discriminator's x_{t-1} argument only (x_t, t and y are conditioning) and
keep the graph (``create_graph=True``) so the penalty trains the discriminator. Both are per-sample quantities
averaged over the batch, exact only for a discriminator without cross-sample coupling (no minibatch-stddev).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from .. import _checks
from ..ops.reference import compute_dtype


def _sq_norms(grad: Tensor) -> Tensor:
    return grad.to(compute_dtype(grad.dtype)).reshape(grad.shape[0], -1).pow(2).sum(1)


def r1_penalty(real_logits: Tensor, x_prev: Tensor) -> Tensor:
    """E_real ||grad_{x_prev} V||^2: per-sample squared gradient norm, averaged over the batch.

    ``x_prev`` must have ``requires_grad`` set *before* the discriminator ran on it and ``real_logits`` is that
    run's output. The caller multiplies by gamma / 2 (and by the interval k for lazy regularisation).
    """
    if not isinstance(real_logits, Tensor) or not isinstance(x_prev, Tensor):
        raise TypeError("r1_penalty: expected tensors real_logits and x_prev")
    if not x_prev.requires_grad:
        raise ValueError("x_prev: must require grad; call x_prev.requires_grad_() before running the "
                         "discriminator on it")
    if real_logits.grad_fn is None:
        raise ValueError("real_logits: carries no graph; it must be the discriminator's output on x_prev, computed "
                         "with gradients enabled")
    if real_logits.numel() != x_prev.shape[0]:
        raise ValueError(f"real_logits: expected one logit per sample of x_prev ({x_prev.shape[0]}), "
                         f"got {real_logits.numel()}")
    (grad,) = torch.autograd.grad(real_logits.sum(), x_prev, create_graph=True)
    return _sq_norms(grad).mean()


def gradient_penalty(discriminator_fn: Callable, real_prev: Tensor, fake_prev: Tensor, x_t: Tensor, t: Tensor,
                     y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None) -> Tensor:
    """WGAN-GP: E (||grad_{x_hat} V(x_hat, x_t, t, y)|| - 1)^2 on x_hat = a real_prev + (1 - a) fake_prev.

    ``a ~ U(0, 1)`` per sample (from ``generator``); only the x_{t-1} argument is interpolated, the conditioning
    (x_t, t, y) is the pair's own. ``discriminator_fn(x_prev, x_t, t, y)`` returns one logit per sample
    (``y`` is passed as given, possibly None). The caller multiplies by ``gp_lambda``.
    """
    if not callable(discriminator_fn):
        raise TypeError(f"discriminator_fn: expected a callable D(x_prev, x_t, t, y), got "
                        f"{type(discriminator_fn).__name__}")
    real_prev = _checks.data("real_prev", real_prev)
    fake_prev = _checks.data("fake_prev", fake_prev, like=real_prev, like_name="real_prev")
    batch = real_prev.shape[0]
    alpha = torch.rand((batch,) + (1,) * (real_prev.dim() - 1), device=real_prev.device, generator=generator)
    real_prev, fake_prev = real_prev.detach(), fake_prev.detach()
    with torch.enable_grad():
        x_hat = (fake_prev + alpha.to(real_prev.dtype) * (real_prev - fake_prev)).requires_grad_(True)
        v = discriminator_fn(x_hat, x_t, t, y)
        if not isinstance(v, Tensor) or v.numel() != batch:
            raise ValueError(f"discriminator_fn: expected one logit per sample ({batch}), got "
                             f"{tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__}")
        (grad,) = torch.autograd.grad(v.sum(), x_hat, create_graph=True)
        norms = (_sq_norms(grad) + 1e-12).sqrt()
        return (norms - 1).pow(2).mean()
