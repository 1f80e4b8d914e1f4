"""Probe: train a 2-D DDGAN with a schedule given by its per-step noise levels sigma_t (data units,
x_t = sqrt(ab) (x0 + sigma_t eps)), by replacing Schedule.cosine for this process only.
usage: python probe.py "0.2,0.8,2.5,80" <train args incl. --schedule cosine>"""
import sys, torch
from fastddgan.schedule import Schedule
sig = torch.tensor([float(v) for v in sys.argv[1].split(",")], dtype=torch.float64)
ab = 1.0 / (1.0 + sig**2)
prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
betas = 1.0 - ab / prev
Schedule.cosine = classmethod(lambda cls, T=1000, **k: cls(betas.clone(), name=f"sigmas{len(sig)}"))
from fastddgan.train import main
sys.exit(main(sys.argv[2:]))
