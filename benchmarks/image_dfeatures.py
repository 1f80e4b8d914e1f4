"""How input-dependent is a trained image DDGAN's discriminator? For each checkpoint, on 512 true pairs of the data
set (one t per pair, t ~ U{0..T-1}) and the run's generated pairs from the same x_t: the logits' mean and std over
samples, mean |D(fake) - D(true)| (overall and per t), how much the logit moves when x_{t-1} is swapped for another
sample's, and the std over samples of the pooled head features silu(GN(h)).mean(positions) that the linear head
reads. A discriminator that has gone flat in training (sweep-mnist5k/README.md, sessions 33-36) shows logits and
pooled features that barely vary from sample to sample.

From the checkpoint's Adam state, per network: the gradient's scale (rms and median over parameters of sqrt(v), v
Adam's running mean of the squared gradient) and the step Adam takes, m / (sqrt(v) + eps) in units of the learning
rate (rms over parameters). Adam's step does not shrink with the gradient: a generator behind a flat discriminator
gets a gradient orders of magnitude smaller and moves as far per step.

    python benchmarks/image_dfeatures.py RUN/checkpoints/ckpt-00001000.pt [MORE.pt ...] --data-dir DATA
"""

from __future__ import annotations

import argparse
from typing import Dict

import torch
import torch.nn.functional as F

import fastddgan
from fastddgan import checkpoint
from fastddgan.data import load_dataset, to_model_range


def features(model, x0: torch.Tensor, seed: int) -> dict:
    d = model.discriminator.eval()
    seen = {}
    hook = d.norm_out.register_forward_hook(lambda m, args, out: seen.update(h=F.silu(out).mean(dim=(2, 3))))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        t, x_prev, x_t = model._pair(x0, g)
        fake = model._fake_prev(x_t, t, None, g)
        real_logit = d(x_prev, x_t, t)
        pooled = seen["h"]
        fake_logit = d(fake, x_t, t)
        swapped = d(x_prev[torch.randperm(len(x0), generator=g)], x_t, t)
    hook.remove()
    gap = (fake_logit - real_logit).abs()
    return {"logit_mean": real_logit.mean().item(), "logit_std": real_logit.std().item(),
            "fake_minus_true": gap.mean().item(), "swap_change": (swapped - real_logit).abs().mean().item(),
            "pooled_std": pooled.std(0).mean().item(), "pooled_abs": pooled.abs().mean().item(),
            "per_t": [gap[t == k].mean().item() for k in range(model.T)]}


def adam_state(optimizers: Dict[str, torch.optim.Optimizer]) -> dict:
    """Per Adam optimiser by name ("g", "d"; ``fastddgan.checkpoint.optimizers(model)`` of a loaded checkpoint), from
    its bias-corrected moments m_hat = m / (1 - beta1^k), v_hat = v / (1 - beta2^k) after k steps: rms and median of
    sqrt(v_hat) over its parameters (the gradient's scale) and rms of m_hat / (sqrt(v_hat) + eps) (the step, in units
    of lr). An optimiser that has taken no step yet is left out."""
    out = {}
    for name, optimizer in optimizers.items():
        v, steps = [], []
        for group in optimizer.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = optimizer.state.get(p)
                if not state or "exp_avg" not in state:
                    continue
                k = float(state["step"])
                m1 = state["exp_avg"].flatten() / (1 - beta1 ** k)
                v1 = state["exp_avg_sq"].flatten() / (1 - beta2 ** k)
                v.append(v1)
                steps.append(m1 / (v1.sqrt() + group["eps"]))
        if not v:
            continue
        v_all = torch.cat(v)
        out[name] = {"grad_rms": v_all.mean().sqrt().item(), "grad_median": v_all.sqrt().median().item(),
                     "step_rms": torch.cat(steps).pow(2).mean().sqrt().item()}
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--n", type=int, default=512, help="true pairs (the data set's first n images)")
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    x0 = to_model_range(load_dataset(args.dataset, data_dir=args.data_dir).images[:args.n])
    for path in args.checkpoints:
        model = fastddgan.load(path)
        r = features(model, x0, args.seed)
        print(f"{path}\n  logit mean {r['logit_mean']:.3f} std {r['logit_std']:.2e} | |fake - true| "
              f"{r['fake_minus_true']:.2e} | swap x_prev {r['swap_change']:.2e} | pooled features: std over samples "
              f"{r['pooled_std']:.3f}, mean |h| {r['pooled_abs']:.3f}\n  |fake - true| per t: "
              + " ".join(f"{v:.1e}" for v in r["per_t"]))
        adam = adam_state(checkpoint.optimizers(model))
        print("  Adam: " + " | ".join(f"{name}: gradient rms {a['grad_rms']:.1e} (median {a['grad_median']:.1e}), "
                                     f"step rms {a['step_rms']:.2f} lr" for name, a in adam.items()))


if __name__ == "__main__":
    main()
