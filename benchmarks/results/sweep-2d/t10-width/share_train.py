"""Experiment only (session 17): train with the last step t = 0 drawn on SHARE of each batch (the other steps
uniformly on the rest), to test whether D's share of last-step pairs sets the mode width at large T.

    python share_train.py SHARE <fastddgan.train flags>
"""
import sys

import torch

from fastddgan import ddgan, ops
from fastddgan.train import main

share = float(sys.argv.pop(1))


def pair(self, model, x0, generator):
    weights = torch.full((model.T,), (1 - share) / (model.T - 1))
    weights[0] = share
    t = torch.multinomial(weights, x0.shape[0], replacement=True, generator=generator).to(x0.device)
    x_prev, x_t = ops.q_sample_pairs(x0, t, model.schedule, generator=generator)
    return t, x_prev, x_t


ddgan.DDGANObjective.pair = pair
sys.exit(main(sys.argv[1:]))
