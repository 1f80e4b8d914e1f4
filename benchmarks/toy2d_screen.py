"""Screening runs for the 2-D recipe: one DDGAN or DDPM on ring8 / grid25 with any network or optimiser setting
(including the ones the CLI does not expose, e.g. the MLPs' depth), trained for a fixed number of steps and
evaluated with the exact mixture metrics. One JSON line per run is printed and appended to ``--log``.

    python benchmarks/toy2d_screen.py NAME STEPS [key=value ...]

keys: ``model`` (ddgan | ddpm), ``data`` (ring8 | grid25), ``seed``, ``T``, ``batch``, ``final_share`` (the
share of each batch that trains the final step t = 0; default uniform), ``curve`` (every N steps: the
training metrics and a probe of D's logits, see ``critic_probe``); ``g.X`` / ``d.X`` / ``e.X``
set the generator's / discriminator's / denoiser's constructor argument X (e.g. ``g.num_layers=4``,
``d.fourier=64``); anything else goes to ``DDGAN(...)`` / ``DDPM(...)`` (e.g. ``r1_gamma=0``,
``betas=(0.5,0.99)``, ``lr=1e-3``). Values are Python literals. Starts from the ``toy2d`` preset and the trainer's
2-D optimiser settings of 2026-11-29 *before* that session's changes (Adam (0.5, 0.9), lr 1e-3, R1 0.05, EMA
0.995; DDPM lr 2e-4), so that every key is a measured change against one baseline.

The ``last_step`` field is the diagnosis that located ring8's errors: the final reverse step alone, started
from true x_1 ~ q(x_1 | x0), gives the same share within 3 std as the whole chain.
"""

from __future__ import annotations

import argparse
import ast
import json
import time

import torch

from fastddgan import ops
from fastddgan.checkpoint import from_preset
from fastddgan.data import TOY2D, toy2d
from fastddgan.metrics.toy2d import sliced_wasserstein
from fastddgan.models.presets import preset

ROLES = {"g": "generator", "d": "discriminator", "e": "denoiser"}


def last_step_quality(model, data: str, n: int = 4000, seed: int = 123) -> float:
    """Share within 3 std after one DDGAN generator step from true x_1 ~ q(x_1 | x0) (x0 from the data)."""
    g = torch.Generator().manual_seed(seed)
    x0 = toy2d(data, n, generator=g)
    ab = model.schedule.alphas_cumprod[0].float()
    x1 = ab.sqrt() * x0 + (1 - ab).sqrt() * torch.randn(x0.shape, generator=g)
    t = torch.zeros(n, dtype=torch.long)
    with torch.no_grad():
        x0_pred = model.ema(x1, torch.randn(n, model.nz, generator=g), t)
        out = ops.posterior_sample(x0_pred, x1, t, model.schedule, generator=g)
    return TOY2D[data].mode_stats(out.double())["high_quality"]


def critic_probe(model, data: str, n: int = 1024, seed: int = 321) -> dict:
    """D's logits on a fixed batch of true and generated pairs: their means, the mean |V| on generated pairs, and
    the generator's gradient scale d(loss_g)/dV averaged over generated pairs (for a bounded critic such as TV's
    tanh, the share of gradient left when the logits saturate)."""
    g = torch.Generator().manual_seed(seed)
    x0 = toy2d(data, n, generator=g)
    with torch.no_grad():
        t, x_prev, x_t = model._pair(x0, g)
        fake_prev = model._fake_prev(x_t, t, None, g)
        real, fake = model._d(x_prev, x_t, t, None), model._d(fake_prev, x_t, t, None)
    v = fake.clone().requires_grad_(True)
    grad, = torch.autograd.grad(model.loss.generator(v) * n, v)
    return {"v_real": round(real.mean().item(), 3), "v_fake": round(fake.mean().item(), 3),
            "abs_v_fake": round(fake.abs().mean().item(), 3), "g_grad": round(grad.abs().mean().item(), 5)}


def _weight_final_step(model, share: float) -> None:
    """Train the final step (t = 0) on ``share`` of each batch and the other steps uniformly on the rest."""
    weights = torch.full((model.T,), (1 - share) / (model.T - 1))
    weights[0] = share

    def pair(model, x0, generator):
        t = torch.multinomial(weights, x0.shape[0], replacement=True, generator=generator)
        x_prev, x_t = ops.q_sample_pairs(x0, t, model.schedule, generator=generator)
        return t, x_prev, x_t

    model.objective.pair = pair  # the objective draws the training pairs of both steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name")
    p.add_argument("steps", type=int)
    p.add_argument("settings", nargs="*", help="key=value")
    p.add_argument("--log", default="toy2d_screen.jsonl")
    args = p.parse_args()
    kv = dict(a.split("=", 1) for a in args.settings)
    kind, data = kv.pop("model", "ddgan"), kv.pop("data", "ring8")
    seed, batch = int(kv.pop("seed", 0)), int(kv.pop("batch", 256))
    final_share = float(kv.pop("final_share", 0))
    curve_every = int(kv.pop("curve", 0))
    T = int(kv.pop("T", 4 if kind == "ddgan" else 1000))
    cfg = preset("toy2d")
    cfg["generator"]["num_layers"] = cfg["denoiser"]["num_layers"] = 3  # the baseline of 2026-11-29
    for key in [k for k in kv if k[:2] in ("g.", "d.", "e.")]:
        cfg[ROLES[key[0]]][key[2:]] = ast.literal_eval(kv.pop(key))
    options = dict(loss="js", lr_g=1e-3, lr_d=1e-3, r1_gamma=0.05, ema_decay=0.995, total_steps=args.steps) \
        if kind == "ddgan" else dict(lr=2e-4, ema_decay=0.995)
    options.update({k: ast.literal_eval(v) for k, v in kv.items()})
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = from_preset(kind, cfg, T, None, **options)
    if final_share:
        _weight_final_step(model, final_share)
    g = torch.Generator().manual_seed(seed)
    start = time.time()
    curve = []
    for step in range(1, args.steps + 1):
        metrics = model.train_step(toy2d(data, batch, generator=g), generator=g)
        if curve_every and step % curve_every == 0:
            curve.append(dict(step=step, **{k: round(float(v), 4) for k, v in metrics.items()},
                              **critic_probe(model, data)))
    seconds = time.time() - start
    results = {}
    for T_s in ([T] if kind == "ddgan" else [T, 50]):
        x = model.sample(4000, T=T_s, seed=1000)
        stats = TOY2D[data].mode_stats(x.double())
        results[T_s] = {"modes": stats["modes_covered"], "within_3std": round(stats["high_quality"], 4),
                        "sliced_w1": round(sliced_wasserstein(x, toy2d(data, 4000, torch.Generator().manual_seed(7))),
                                           4)}
    record = dict(name=args.name, model=kind, data=data, steps=args.steps, seed=seed, batch=batch,
                  final_share=final_share,
                  train_seconds=round(seconds, 1), results=results,
                  networks={k: cfg[k] for k in ROLES.values()}, options=options)
    if curve:
        record["curve"] = curve
    if kind == "ddgan":
        record["last_step_within_3std"] = round(last_step_quality(model, data), 4)
    line = json.dumps(record, default=str)
    print(line)
    with open(args.log, "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
