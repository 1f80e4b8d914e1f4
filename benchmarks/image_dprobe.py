"""Can a discriminator see what a trained image DDGAN's generator gets wrong, step by step? Freezes the run's
generator (its raw weights: what its discriminator was trained against), trains a discriminator on (true, generated)
pairs of every step t with the run's objective settings (js, R1 gamma 0.02 unless ``--r1-gamma``, lr 2.5e-4, Adam
(0.5, 0.9), batch 64) on digits 1000.. of the data set, and reports its loss and accuracy per t on pairs of the
held-out digits 0..999 (chance: loss 2 ln 2 = 1.386, accuracy 0.5). ``--ch 0`` continues the run's own
discriminator (and reports its objective's divergence bound per t as well; ``--steps 0``: only that, for the
checkpoint as trained); ``--ch C`` trains a fresh one of width C.

    python benchmarks/image_dprobe.py RUN/checkpoints/final.pt --ch 16 --steps 800 --data-dir DATA

A held-out loss that rises while the training loss falls is a discriminator memorising the training digits, not
finding a flaw of the generator.

``--denoised``: the discriminator also sees the run's next generator step applied to x_{t-1}, i.e. the EMA
generator's x0 prediction G(x_{t-1}, z, t - 1) (x_{t-1} itself at t = 0), as a second channel beside x_{t-1}
(and x_t twice, to keep the pair shape). Asks whether the flaw of a noisy step, hidden at SNR ~ 1, shows once the
(nearly exact) later steps have denoised it.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import fastddgan
from fastddgan.data import load_dataset, to_model_range
from fastddgan.losses import get_loss, r1_penalty
from fastddgan.models.ddgan import DDGANDiscriminator

HELD_OUT = 1000
JS = get_loss("js")  # the fresh discriminator's objective (D loss = -its bound)


def with_denoised(model, x_prev: torch.Tensor, t: torch.Tensor, generator) -> torch.Tensor:
    """cat[x_{t-1}, G_ema(x_{t-1}, z, t - 1)] (x_{t-1} itself in place of the prediction at t = 0)."""
    with torch.no_grad():
        z = torch.randn(x_prev.shape[0], model.nz, generator=generator)
        x0_hat = model.ema.module(x_prev, z, (t - 1).clamp(min=0))
        x0_hat = torch.where((t > 0).view(-1, 1, 1, 1), x0_hat, x_prev)
    return torch.cat([x_prev, x0_hat], 1)


def denoised_pairs(model, x_prev, fake_prev, x_t, t, generator):
    """The ``--denoised`` discriminator's inputs: (true x_{t-1}, generated x_{t-1}) each with its denoising, and
    x_t twice (the pair's shape)."""
    return (with_denoised(model, x_prev, t, generator), with_denoised(model, fake_prev, t, generator),
            torch.cat([x_t, x_t], 1))


def held_out_scores(model, D, x0: torch.Tensor, seed: int = 5, denoised: bool = False, loss=None) -> dict:
    """Per t: the mean JS discriminator loss (minus the js bound) and accuracy on true and generated pairs of
    ``x0``, and the divergence bound of ``loss`` (an objective of fastddgan.losses; js when None) on them: for the
    run's own discriminator (``--ch 0``) the run's objective, what training logs as ``divergence_t<t>``."""
    loss = loss or JS
    D.eval()
    g = torch.Generator().manual_seed(seed)
    reals, fakes, ts = [], [], []
    with torch.no_grad():
        for i in range(0, len(x0), 100):
            t, x_prev, x_t = model._pair(x0[i:i + 100], g)
            fake_prev = model._fake_prev(x_t, t, None, g)
            if denoised:
                x_prev, fake_prev, x_t = denoised_pairs(model, x_prev, fake_prev, x_t, t, g)
            reals.append(D(x_prev, x_t, t).flatten()), fakes.append(D(fake_prev, x_t, t).flatten()), ts.append(t)
    D.train()
    real, fake, t = torch.cat(reals), torch.cat(fakes), torch.cat(ts)
    js_loss = (-JS.divergence_per_group(real, fake, t, model.T)).tolist()  # js: D loss = -bound
    right = ((real > 0).float() + (fake < 0).float()) / 2  # per pair: the share of its two members classified right
    accuracy = right.new_zeros(model.T).index_add_(0, t, right) / torch.bincount(t, minlength=model.T)
    bound = loss.divergence_per_group(real, fake, t, model.T).tolist()
    return {s: {"loss": round(js_loss[s], 4), "accuracy": round(float(accuracy[s]), 4),
                f"{loss.name}_bound": round(bound[s], 4)} for s in range(model.T)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--ch", type=int, default=0, help="0: continue the run's discriminator; C: a fresh one, width C")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--data-dir", default="data")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--held-out", type=int, default=HELD_OUT, help="digits 0 .. N-1 score D, the rest train it")
    p.add_argument("--r1-gamma", type=float, default=0.02, help="R1 weight of the discriminator's training")
    p.add_argument("--denoised", action="store_true", help="D also sees G_ema(x_{t-1}, z, t - 1) (needs --ch)")
    args = p.parse_args(argv)
    if not args.r1_gamma >= 0:  # NaN fails too
        p.error(f"--r1-gamma: expected a number >= 0, got {args.r1_gamma}")
    torch.manual_seed(args.seed)
    model = fastddgan.load(args.checkpoint)
    config = model.checkpoint_extra.get("train_config", {})
    data = load_dataset(config.get("dataset", "mnist5k"), data_dir=args.data_dir)
    x = to_model_range(data.images)
    if not 0 < args.held_out < len(x):
        p.error(f"--held-out: expected 1 .. {len(x) - 1} digits, got {args.held_out}")
    held, train = x[:args.held_out], x[args.held_out:]
    if args.denoised and not args.ch:
        p.error("--denoised needs a fresh discriminator (--ch C)")
    D = model.discriminator
    if args.ch:
        D = DDGANDiscriminator(in_channels=data.channels * (1 + args.denoised), ch=args.ch, ch_mult=(1, 2, 4),
                               num_res_blocks=1, image_size=data.image_size)
    opt = torch.optim.Adam(D.parameters(), lr=2.5e-4, betas=(0.5, 0.9))
    g = torch.Generator().manual_seed(args.seed + 1)
    own = None if args.ch else model.loss  # the run's own D: its objective's bound too
    print(json.dumps({"checkpoint": args.checkpoint, "step": 0, "parameters": sum(q.numel() for q in D.parameters()),
                      "held_out": held_out_scores(model, D, held, denoised=args.denoised, loss=own)}), flush=True)
    start = time.time()
    for step in range(1, args.steps + 1):
        t, x_prev, x_t = model._pair(train[torch.randint(0, len(train), (64,), generator=g)], g)
        with torch.no_grad():
            fake_prev = model._fake_prev(x_t, t, None, g)
        if args.denoised:
            x_prev, fake_prev, x_t = denoised_pairs(model, x_prev, fake_prev, x_t, t, g)
        x_prev.requires_grad_(True)
        real = D(x_prev, x_t, t)
        loss = JS.discriminator(real, D(fake_prev, x_t, t))
        opt.zero_grad()
        (loss + 0.5 * args.r1_gamma * r1_penalty(real, x_prev)).backward()
        opt.step()
        if step % max(1, args.steps // 4) == 0:
            print(json.dumps({"step": step, "seconds": round(time.time() - start), "train_loss": round(loss.item(), 4),
                              "held_out": held_out_scores(model, D, held, denoised=args.denoised, loss=own)}),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
