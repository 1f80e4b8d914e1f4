"""Probe: the trainer with a mode-seeking diversity term for G at the final step (Mao et al. 2019):
loss_g += lambda * mean_i 1 / (|G(x_1, z1) - G(x_1, z2)|_1 / |z1 - z2|_1 + 1e-4) over the batch's t = 0 samples.
    MS_LAMBDA=1e-4 python msgan.py --dataset ring8 ... (the train CLI's arguments)"""
import os, runpy, sys, torch
from fastddgan import ddgan
LAM = float(os.environ["MS_LAMBDA"])
orig = ddgan.DDGANObjective.generator_step

def generator_step(self, model, state, x0, y, generator=None):
    t, _, x_t = self.pair(model, x0, generator)
    self.discriminator.requires_grad_(False)
    try:
        fake = self.d_seen(self.fake_prev(model, x_t, t, y, generator), x_t, t, y, generator)
        loss_g = self.loss.generator(fake)
        last = t == 0
        if last.any():
            xl = x_t[last]
            z1 = torch.randn(xl.shape[0], model.nz, generator=generator)
            z2 = torch.randn(xl.shape[0], model.nz, generator=generator)
            a, b = self.nets[0](xl, z1, t[last], None), self.nets[0](xl, z2, t[last], None)
            ratio = (a - b).abs().mean(1) / (z1 - z2).abs().mean(1)
            ms = (1.0 / (ratio + 1e-4)).mean()
            loss_g = loss_g + LAM * ms
        state.backward("g", loss_g)
    finally:
        self.discriminator.requires_grad_(True)
    state.optimizer_step("g")
    model.ema.update(model.generator)
    return {"loss_g": loss_g.detach()}

ddgan.DDGANObjective.generator_step = generator_step
sys.argv = ["fastddgan.train"] + sys.argv[1:]
runpy.run_module("fastddgan.train", run_name="__main__")
