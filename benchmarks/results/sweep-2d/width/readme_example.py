import sys, torch, fastddgan
from fastddgan.data import toy2d, TOY2D
from fastddgan.models import build
torch.set_num_threads(1)
torch.manual_seed(int(sys.argv[1]))
schedule = fastddgan.Schedule.cosine(4, power=1.25)
model = fastddgan.DDGAN(build("toy2d", "generator"), build("toy2d", "discriminator"), schedule, loss="js",
                        lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.99), r1_gamma=0.05, ema_decay=0.995, diversity=2e-6,
                        sample_shape=(2,), clip_x0=False)
for step in range(4000):
    model.train_step(toy2d("ring8", 256))
print(sys.argv[1], TOY2D["ring8"].mode_stats(model.sample(2000)))
