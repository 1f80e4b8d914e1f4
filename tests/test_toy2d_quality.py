"""The paper's point on the 8-Gaussian ring: with T = 4 large steps a per-step GAN (DDGAN) recovers every sharp
mode, while a Gaussian reverse step (DDPM) with the same 4 steps cannot. About a minute on 2 CPU cores."""

import torch

from fastddgan import DDGAN, DDPM, Schedule
from fastddgan.data import TOY2D, toy2d
from fastddgan.models import build

STEPS_DDGAN, STEPS_DDPM, BATCH = 4000, 1500, 256


def train(model, steps, seed):
    data = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        model.train_step(toy2d("ring8", BATCH, data))
    return TOY2D["ring8"].mode_stats(model.sample(2000, generator=torch.Generator().manual_seed(seed + 1)))


def test_ddgan_covers_the_ring_and_ddpm_at_four_steps_does_not():
    torch.manual_seed(0)
    ddgan = DDGAN(build("toy2d", "generator"), build("toy2d", "discriminator"), Schedule.ddgan(4), loss="js",
                  lr_g=1e-3, lr_d=1e-3, r1_gamma=0.05, ema_decay=0.995, sample_shape=(2,), clip_x0=False)
    gan = train(ddgan, STEPS_DDGAN, seed=1)
    ddpm = DDPM(build("toy2d", "denoiser"), Schedule.ddgan(4), lr=1e-3, ema_decay=0.995, p_uncond=0.0,
                sample_shape=(2,), clip_x0=False)
    gauss = train(ddpm, STEPS_DDPM, seed=1)
    print(f"DDGAN-js T=4: {gan}; DDPM T=4: {gauss}")
    assert gan["modes_covered"] == 8, gan
    assert gan["high_quality"] > 0.4, gan
    assert gauss["high_quality"] < 0.1 and gauss["high_quality"] < gan["high_quality"] / 4, (gan, gauss)
