"""Can the toy discriminator see a mode's width? Logistic regression (D alone, no GAN) of true final-step pairs
(x0, x1) against pairs whose x0 is pulled to its mode's centre by a factor `shrink` (x1 the same), ring8, t = 0.
Prints held-out accuracy and loss over steps."""
import sys, math, time, torch, torch.nn.functional as F
from fastddgan.models.toy import ToyDiscriminator
from fastddgan.data.toy2d import TOY2D
from fastddgan.schedule import Schedule
torch.manual_seed(0); torch.set_num_threads(1)
kw = eval("dict(" + (sys.argv[1] if len(sys.argv) > 1 else "") + ")")
shrink = kw.pop("shrink", 0.5); steps = kw.pop("steps", 6000); lr = kw.pop("lr", 1e-3); scale = kw.pop("scale", 1.0)
r1 = kw.pop("r1", 0.0)
mix = TOY2D["ring8"]; s = mix.std
ab = Schedule.cosine(4, power=1.25).alphas_cumprod[0].float()
D = ToyDiscriminator(2, **{"hidden": 128, "num_layers": 3, **kw})
opt = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.9))
def batch(n, g=None):
    k = torch.randint(0, 8, (n,), generator=g); c = mix.centers[k]
    x0 = c + s * torch.randn(n, 2, generator=g)
    x1 = ab.sqrt() * x0 + (1 - ab).sqrt() * torch.randn(n, 2, generator=g)
    x0f = c + shrink * (x0 - c)
    return x0 * scale, x1 * scale, x0f * scale
t = torch.zeros(512, dtype=torch.long)
gt = torch.Generator().manual_seed(1); test = batch(4096, gt); tt = torch.zeros(4096, dtype=torch.long)
t0 = time.time()
for i in range(1, steps + 1):
    x0, x1, x0f = batch(512)
    x0.requires_grad_(r1 > 0)
    real, fake = D(x0, x1, t), D(x0f, x1, t)
    loss = F.softplus(-real).mean() + F.softplus(fake).mean()
    if r1 > 0:
        (g,) = torch.autograd.grad(real.sum(), x0, create_graph=True); loss = loss + 0.5 * r1 * g.pow(2).sum(1).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    if i in (500, 1000, 2000, 4000, 6000, 10000, 20000):
        with torch.no_grad():
            r, f = D(test[0], test[1], tt), D(test[2], test[1], tt)
            acc = 0.5 * ((r > 0).float().mean() + (f < 0).float().mean())
            l = F.softplus(-r).mean() + F.softplus(f).mean()
        print(sys.argv[1:], i, "acc %.3f loss %.3f (chance 1.386)  %.0fs" % (acc, l, time.time() - t0), flush=True)
