"""Where does the final step's width come from? For x0 in one mode, x1 ~ q(x1|x0); G(x1, z, t=0).
spread: RMS distance from the outputs' mean over the data's RMS (sqrt(2) std) -> 1 for the true posterior."""
import sys, math, torch
from fastddgan.checkpoint import load
from fastddgan.data.toy2d import TOY2D
torch.manual_seed(0)
path, data = sys.argv[1], sys.argv[2]
model = load(path); mix = TOY2D[data]; s = mix.std
ab = model.schedule.alphas_cumprod[0].float()
print("sigma_1", float(((1 - ab) / ab).sqrt()))
def spread(y):
    m = y.median(0).values
    return float((y - m).norm(dim=1).median() / (math.sqrt(2 * math.log(2)) * s))
n = 2000
for name, net in (("ema", model.ema.module if hasattr(model.ema, "module") else model.ema), ("raw", model.generator)):
    res = []
    for k in range(3):
        c = mix.centers[k]
        x0 = c + s * torch.randn(n, 2)
        x1 = ab.sqrt() * x0 + (1 - ab).sqrt() * torch.randn(n, 2)
        t = torch.zeros(n, dtype=torch.long)
        with torch.no_grad():
            tot = net(x1, torch.randn(n, model.nz), t)
            onex = net(x1[:1].expand(n, 2), torch.randn(n, model.nz), t)
            onez = net(x1, torch.randn(1, model.nz).expand(n, model.nz), t)
        res.append((spread(tot), spread(onex), spread(onez), float((tot.median(0).values - c).norm() / s)))
    print(name, "total / over z (x1 fixed) / over x1 (z fixed) / offset:", ["%.2f %.2f %.2f %.2f" % r for r in res])
