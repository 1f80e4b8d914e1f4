"""Benchmark of one 2-D DDGAN training iteration: ``DDGAN.train_step`` against a plain PyTorch loop of the same
networks, on CPU with 1 and 2 threads.

    pytest benchmarks/bench_train2d.py                  # smoke test: each benchmarked call runs once
    pytest --benchmark-only benchmarks/bench_train2d.py --benchmark-json=benchmarks/results/NAME.json
    python benchmarks/report.py benchmarks/results/NAME.json --out-md benchmarks/results/NAME.md

Group ``ddgan-train-2d ring8 batch=256 threads=N`` (the CLI's 2-D defaults: the ``toy2d`` preset, JS objective,
R1 0.05 every step, Adam (0.5, 0.99), EMA 0.995, T = 4), rows:

* ``plain-pytorch`` (the reference row): the iteration as one writes it without this package, the way the public
  DDGAN reference implementation's training loop does: ``torch.randn`` noise and the closed-form q / posterior
  formulas in eager ops, ``F.softplus`` losses, R1 with ``torch.autograd.grad``, and a generator step that
  back-propagates into D's weights too (zeroed, never used), ``torch.optim.Adam`` with torch's default
  implementation, on the same networks (layers, widths, weights)
  computing their conditioning per sample, as a plain implementation does (time embedding -> MLP -> per-layer
  biases for every row of the batch);
* ``plain-pytorch, our modules``: the same loop on fastddgan's modules as they are, which run the conditioning
  MLP once per distinct (t, y) of a CPU batch (``ConditionalMLP._layer_biases``): the trainer's own share;
* ``fastddgan``: ``DDGAN.train_step`` (fused noise ops and loss, no D weight gradients in the G step, fused Adam
  where torch has it).

``extra_info["images"]`` is the batch, so report.py's images/s column reads as training samples per second.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fastddgan.checkpoint import from_preset
from fastddgan.data import toy2d
from fastddgan.models.presets import preset

BATCH, T, SEED = 256, 4, 0
OPTIONS = dict(loss="js", lr_g=1e-3, lr_d=1e-3, r1_gamma=0.05, betas=(0.5, 0.99), ema_decay=0.995, total_steps=20000)
PLAIN = "plain-pytorch"
PLAIN_OURS = "plain-pytorch, our modules"


def _model():
    torch.manual_seed(SEED)
    return from_preset("ddgan", preset("toy2d"), T, None, **OPTIONS)


def per_sample_conditioning(model) -> None:
    """Make the model's conditional MLPs compute the conditioning for every row of the batch (the same function,
    as a plain implementation computes it), instead of once per distinct (t, y)."""
    from fastddgan.models.toy import ConditionalMLP

    mlps = [m for net in (model.generator, model.discriminator) for m in net.modules() if isinstance(m, ConditionalMLP)]
    assert mlps, "the 2-D preset's networks are expected to be ConditionalMLPs"
    for mlp in mlps:
        mlp._layer_biases = mlp.per_sample_biases


class PlainStep:
    """The same iteration as ``DDGAN.train_step`` in eager PyTorch (same networks and EMA; Adam and its LR schedule
    as plain code builds them)."""

    def __init__(self, model):
        s = model.schedule
        self.G, self.D, self.ema, self.nz = model.generator, model.discriminator, model.ema, model.nz
        # torch.optim.Adam as one constructs it (torch's default implementation for the device), with the model's
        # settings and the same cosine LR schedules
        adam = lambda net, lr: torch.optim.Adam(net.parameters(), lr=lr, betas=OPTIONS["betas"])  # noqa: E731
        self.opt_g, self.opt_d = adam(self.G, OPTIONS["lr_g"]), adam(self.D, OPTIONS["lr_d"])
        self.schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(opt, OPTIONS["total_steps"], eta_min=1e-5)
                           for opt in (self.opt_g, self.opt_d)]
        f = lambda v: v.float()  # noqa: E731 (tables as the reference keeps them: float tensors indexed by t)
        sqrt_ab, sqrt_1mab = f(s.alphas_cumprod.sqrt()), f((1 - s.alphas_cumprod).sqrt())
        # x_{t-1} ~ q(x_{t-1} | x0), which is x0 itself at t == 0
        self.prev_ab = torch.cat([torch.ones(1), sqrt_ab[:-1]])
        self.prev_1mab = torch.cat([torch.zeros(1), sqrt_1mab[:-1]])
        self.sqrt_a, self.sqrt_b = f((1 - s.betas).sqrt()), f(s.betas.sqrt())
        self.coef1, self.coef2 = f(s.posterior_mean_coef1), f(s.posterior_mean_coef2)
        self.log_var = f(s.posterior_log_variance_clipped)
        self.r1_gamma, self.T = OPTIONS["r1_gamma"], T

    def _pair(self, x0):
        t = torch.randint(0, self.T, (x0.shape[0],))
        x_prev = self.prev_ab[t][:, None] * x0 + self.prev_1mab[t][:, None] * torch.randn_like(x0)
        x_t = self.sqrt_a[t][:, None] * x_prev + self.sqrt_b[t][:, None] * torch.randn_like(x0)
        return t, x_prev, x_t

    def _posterior(self, x0, x_t, t):
        mean = self.coef1[t][:, None] * x0 + self.coef2[t][:, None] * x_t
        nonzero = (t > 0).float()[:, None]
        return mean + nonzero * torch.exp(0.5 * self.log_var[t][:, None]) * torch.randn_like(x_t)

    def __call__(self, x0):
        t, x_prev, x_t = self._pair(x0)
        x_prev.requires_grad_(True)
        real = self.D(x_prev, x_t, t).view(-1)
        grad, = torch.autograd.grad(real.sum(), x_prev, create_graph=True)
        r1 = grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()
        with torch.no_grad():
            fake_prev = self._posterior(self.G(x_t, torch.randn(x0.shape[0], self.nz), t), x_t, t)
        fake = self.D(fake_prev, x_t, t).view(-1)
        loss_d = F.softplus(-real).mean() + F.softplus(fake).mean() + 0.5 * self.r1_gamma * r1
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        t, _, x_t = self._pair(x0)
        fake = self.D(self._posterior(self.G(x_t, torch.randn(x0.shape[0], self.nz), t), x_t, t), x_t, t).view(-1)
        loss_g = F.softplus(-fake).mean()
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        self.ema.update(self.G)
        for scheduler in self.schedulers:
            scheduler.step()
        return loss_d.detach(), loss_g.detach()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("path", [PLAIN, PLAIN_OURS, "fastddgan"])
def test_ddgan_train_step_2d(benchmark, path, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = _model()
        x0 = toy2d("ring8", BATCH, generator=torch.Generator().manual_seed(SEED))
        if path == PLAIN:
            per_sample_conditioning(model)
        step = (lambda x: model.train_step(x)) if path == "fastddgan" else PlainStep(model)
        for _ in range(3):  # warm-up: allocator, Adam state
            step(x0)
        benchmark.group = f"ddgan-train-2d ring8 batch={BATCH} threads={threads}"
        benchmark.extra_info.update(backend=path, images=BATCH, reference=PLAIN)
        out = benchmark(step, x0)
    finally:
        torch.set_num_threads(before)
    losses = (out["loss_d"], out["loss_g"]) if path == "fastddgan" else out
    assert all(torch.isfinite(v) for v in losses)
