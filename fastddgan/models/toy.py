"""MLP models for 2-D (or any low-dimensional) data, with the interfaces of the image models.

All three share one trunk (:class:`ConditionalMLP`):

    c = SiLU(MLP(sinusoid(t)) + E[y]),   h_0 = input,
    h_l = act(W_l h_{l-1} + U_l c)   for l = 1..num_layers,   out = W_out h_L

i.e. the time (+ class) embedding is added as a bias in every hidden layer. Outputs are unbounded (2-D toy data
has scale ~4, so no tanh). The sinusoid's longest period is 10 * T_max.

With ``fourier = F > 0`` the input first gets F random Fourier features (Tancik et al. 2020),

    h_0 = [x, sin(2 pi x B), cos(2 pi x B)],   B (in_dim, F) ~ N(0, fourier_scale^2), drawn once (a buffer),

which lets a small MLP resolve structure finer than its input range (plain MLPs learn low frequencies first):
``fourier_scale`` is in cycles per input unit.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from .embeddings import ConditionEmbedding

__all__ = ["ConditionalMLP", "ToyGenerator", "ToyDiscriminator", "ToyDenoiser"]


ACTIVATIONS = {"silu": nn.SiLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU}


class ConditionalMLP(nn.Module):
    """(B, in_dim), t (B,), y (B,) or None -> (B, out_dim); see the module docstring for the math."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128, num_layers: int = 3,
                 num_classes: Optional[int] = None, T_max: int = 1000, act: str = "silu",
                 fourier: int = 0, fourier_scale: float = 1.0):
        super().__init__()
        self.fourier = _checks.positive_int("fourier", fourier, 0)
        if fourier:
            if isinstance(fourier_scale, bool) or not isinstance(fourier_scale, (int, float)) or \
                    not 0 < fourier_scale < float("inf"):
                raise ValueError(f"fourier_scale: expected a positive number, got {fourier_scale!r}")
            self.register_buffer("fourier_b", torch.randn(in_dim, fourier) * (2 * math.pi * fourier_scale))
            in_dim = in_dim + 2 * fourier
        _checks.positive_int("hidden", hidden, 2)
        self.num_layers = _checks.positive_int("num_layers", num_layers)
        _checks.positive_int("T_max", T_max)
        self.num_classes = _checks.optional_classes(num_classes)
        if act not in ACTIVATIONS:
            raise ValueError(f"act: expected one of {sorted(ACTIVATIONS)}, got {act!r}")
        self.act = ACTIVATIONS[act]()
        self.cond = ConditionEmbedding(hidden, hidden, num_classes, max_period=10.0 * T_max)
        self.cond_proj = nn.Linear(hidden, hidden * num_layers)  # all layers' U_l c in one matmul
        self.layers = nn.ModuleList(nn.Linear(in_dim if i == 0 else hidden, hidden) for i in range(num_layers))
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, h: torch.Tensor, t, y=None) -> torch.Tensor:
        biases = self._layer_biases(t, y, h.shape[0], h.device, h.dtype).chunk(self.num_layers, dim=1)
        if self.fourier:
            proj = h @ self.fourier_b
            h = torch.cat([h, proj.sin(), proj.cos()], dim=1)
        for layer, bias in zip(self.layers, biases):
            h = self.act(layer(h) + bias)
        return self.out(h)

    def per_sample_biases(self, t, y, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """[U_1 c, ..., U_L c] computed for every sample: the formula :meth:`_layer_biases` evaluates faster."""
        return self.cond_proj(F.silu(self.cond(t, y, batch, device, dtype)))

    def _layer_biases(self, t, y, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """[U_1 c, ..., U_L c] for every sample, (B, hidden * L). On a CPU the conditioning MLPs run once per
        distinct (t, y) of the batch and the rows are gathered back: the same rows (up to the GEMM's rounding),
        and a DDGAN batch holds at most T distinct steps, so two thirds of a 2-D step's FLOPs (this MLP is
        hidden x hidden wide, the trunk's input only 2-4) are not spent (ring8 DDGAN step: 1.5x faster). Not
        when most values are distinct (a DDPM batch), on a GPU (the distinct values would cost a host sync) or
        under torch.compile (a data-dependent shape)."""
        distinct = None
        if device.type == "cpu" and not torch.compiler.is_compiling():
            t = _checks.timesteps(t, batch, device, continuous=True, of="the input")
            y = _checks.labels(y, batch, self.cond.num_classes, device)
            if y is None:
                t_distinct, rows = torch.unique(t, return_inverse=True)
                y_distinct = None
            else:
                pairs, rows = torch.unique(torch.stack([t.double(), y.double()], 1), dim=0, return_inverse=True)
                t_distinct, y_distinct = pairs[:, 0].to(t.dtype), pairs[:, 1].long()
            distinct = t_distinct.shape[0]
        if distinct is None or 2 * distinct > batch:  # (a DDPM batch of T = 1000: the gather would cost more)
            return self.per_sample_biases(t, y, batch, device, dtype)
        c = F.silu(self.cond(t_distinct, y_distinct, distinct, device, dtype))
        # the gather as a one-hot product: its backward is a matmul, whose sums do not depend on the thread count
        # (an indexing backward's scatter-add does)
        return F.one_hot(rows, distinct).to(dtype) @ self.cond_proj(c)


class ToyGenerator(nn.Module):
    """G(x_t, z, t[, y]) -> x0 prediction (B, dim), unbounded. x_t (B, dim), z (B, nz) ~ N(0, I), concatenated
    as the MLP's input (optionally with ``fourier`` random Fourier features of it)."""

    def __init__(self, dim: int = 2, nz: int = 2, hidden: int = 128, num_layers: int = 3, T_max: int = 1000,
                 num_classes: Optional[int] = None, act: str = "silu", fourier: int = 0, fourier_scale: float = 1.0):
        super().__init__()
        self.dim = _checks.positive_int("dim", dim)
        self.nz = _checks.positive_int("nz", nz)
        self.num_classes = _checks.optional_classes(num_classes)
        self.net = ConditionalMLP(dim + nz, dim, hidden, num_layers, num_classes, T_max, act=act, fourier=fourier,
                                  fourier_scale=fourier_scale)

    def forward(self, x_t: torch.Tensor, z: torch.Tensor, t, y=None) -> torch.Tensor:
        _checks.shaped("x_t", x_t, (None, self.dim))
        z = _checks.latent(z, x_t.shape[0], self.nz, x_t.device)
        return self.net(torch.cat([x_t, z.to(x_t.dtype)], dim=1), t, y)


class ToyDiscriminator(nn.Module):
    """D(x_prev, x_t, t[, y]) -> one logit per sample (B,); LeakyReLU(0.2) MLP on [x_prev, x_t] (optionally
    with ``fourier`` random Fourier features of it). Per-sample only (no coupling across the batch)."""

    def __init__(self, dim: int = 2, hidden: int = 128, num_layers: int = 3, num_classes: Optional[int] = None,
                 T_max: int = 1000, fourier: int = 0, fourier_scale: float = 1.0):
        super().__init__()
        self.dim = _checks.positive_int("dim", dim)
        self.num_classes = _checks.optional_classes(num_classes)
        self.net = ConditionalMLP(2 * dim, 1, hidden, num_layers, num_classes, T_max, act="leaky_relu",
                                  fourier=fourier, fourier_scale=fourier_scale)

    def forward(self, x_prev: torch.Tensor, x_t: torch.Tensor, t, y=None) -> torch.Tensor:
        _checks.shaped("x_t", x_t, (None, self.dim))
        _checks.shaped("x_prev", x_prev, x_t.shape)
        _checks.same_batch("x_prev", x_prev, x_t, "x_t")
        return self.net(torch.cat([x_prev, x_t], dim=1), t, y).squeeze(1)


class ToyDenoiser(nn.Module):
    """DDPM network for low-dimensional data: (x (B, dim), t (B,)[, y]) -> (B, dim), an eps / x0 / v prediction."""

    def __init__(self, dim: int = 2, hidden: int = 128, num_layers: int = 3, num_classes: Optional[int] = None,
                 T_max: int = 1000):
        super().__init__()
        self.dim = _checks.positive_int("dim", dim)
        self.num_classes = _checks.optional_classes(num_classes)
        self.net = ConditionalMLP(dim, dim, hidden, num_layers, num_classes, T_max, act="silu")

    def forward(self, x: torch.Tensor, t, y=None) -> torch.Tensor:
        _checks.shaped("x", x, (None, self.dim))
        return self.net(x, t, y)
