"""Where in the reverse chain does a DDPM draw a grey background? Two measurements on trained image DDPMs (exports or
checkpoints), with the border of ``benchmarks/image_borders.py`` (the outer ``--ring`` pixels, where a centred
digit has none):

* ``splice A B``: paired reverse chains (one seed: the same x_T and step noise) whose denoiser is DDPM A at the
  chain's first, noisiest steps i >= k and DDPM B at the rest, for each switch point k of ``--switch`` (k = T: B
  alone; k = 0: A alone). The share of grey borders per k says which steps make them: if it stays at B's level
  until k is small, they are made in the last, low-noise steps.
* ``offset MODEL ...``: real images with black borders, their black background lifted by ``--delta``, noised to t
  (one fixed noise draw) and denoised in one step: the share of the lift that the predicted x0 keeps on the border
  (``retention`` = (x0-hat border mean + 1) / delta, 0 = the lift removed, 1 = kept), per t. A denoiser that keeps
  more of a lifted background lets a chain's drift towards grey stay. ``--delta 0`` measures its plain bias.

    python benchmarks/ddpm_background.py splice RUN_A/export RUN_B/export [--T 50] [--n 500] [--switch 50,40,0]
    python benchmarks/ddpm_background.py offset RUN/export [MORE ...] --data-dir DATA [--delta 0.05] [--t 20,100]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List

import torch

import fastddgan
from fastddgan import ops
from fastddgan.data import load_dataset, to_model_range
from fastddgan.sampling import stream_seeds

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from image_borders import THRESHOLDS, border_means, describe  # noqa: E402

CPU = torch.device("cpu")


def _ddpm(path: str, name: str) -> "fastddgan.DDPM":
    model = fastddgan.load(path)
    if not isinstance(model, fastddgan.DDPM):
        raise ValueError(f"{name}: expected a DDPM export or checkpoint, got a {type(model).__name__} ({path})")
    return model


def _denoiser(model, T: int):
    setup = model.sampling_setup(T)
    return setup, setup.denoiser(model.sampling_network().eval(), CPU, 0.0)


def spliced_samples(model_a, model_b, T: int, n: int, seed: int, k: int) -> torch.Tensor:
    """n samples of the T-step chain whose denoiser is DDPM A at steps i >= k and DDPM B at i < k, with the seed's
    streams of ``fastddgan.sample`` (k = 0: A's own samples for that seed; k = T: B's)."""
    setup_a, denoise_a = _denoiser(model_a, T)
    setup_b, denoise_b = _denoiser(model_b, T)
    if (model_a.sample_shape != model_b.sample_shape
            or not torch.equal(setup_a.schedule.alphas_cumprod, setup_b.schedule.alphas_cumprod)):
        raise ValueError("A, B: expected DDPMs of one image shape and one noise schedule")
    seeds = stream_seeds(ops.seed_tensor(seed, 0, CPU)[:1], setup_a.streams, torch.zeros(1, dtype=torch.int64))

    def spliced(x, t, **kwargs):  # the sampler walks i = T-1 .. 0, one i per call
        return (denoise_a if int(t[0]) >= k else denoise_b)(x, t, **kwargs)

    with torch.no_grad():
        x_T = ops.normal((n, *model_a.sample_shape), seeds[0])
        return setup_a.sampler(spliced, x_T, setup_a.schedule, seeds, **setup_a.options)


def splice(path_a: str, path_b: str, T: int, n: int, seed: int, switches: List[int], ring: int) -> List[float]:
    """Share of grey borders (mean > THRESHOLDS[0]) of the chains that use A at steps i >= k, B below, per k."""
    model_a, model_b = _ddpm(path_a, "A"), _ddpm(path_b, "B")
    shares = []
    for k in switches:
        start = time.perf_counter()
        means = border_means(spliced_samples(model_a, model_b, T, n, seed, k), ring)
        shares.append((means > THRESHOLDS[0]).float().mean().item())
        print(f"A at steps i >= {k} of {T}, B below: {describe(means)} ({time.perf_counter() - start:.0f} s)",
              flush=True)
    return shares


def offset_retention(path: str, images: torch.Tensor, delta: float, ts: List[int], seed: int,
                     ring: int) -> List[float]:
    """Per t: (mean border of the one-step x0-hat + 1) / delta (the bias itself when delta = 0)."""
    model = _ddpm(path, "MODEL")
    setup, denoise = _denoiser(model, model.T)
    lifted = images + delta * (images <= -1)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    kept = []
    for t in ts:
        ab, steps = float(setup.schedule.alphas_cumprod[t]), torch.full((len(images),), t, dtype=torch.long)
        x_t = ops.q_sample(lifted, steps, setup.schedule, noise=noise)
        with torch.no_grad():
            eps = denoise(x_t, steps)
        x0 = ((x_t - (1 - ab) ** 0.5 * eps) / ab**0.5).clamp(-1, 1)  # as the sampler's clipped x0
        bias = border_means(x0, ring).mean().item() + 1
        kept.append(bias / delta if delta else bias)
    return kept


def _integers(text: str) -> List[int]:
    """An argparse type: comma-separated integers (argparse names the flag and exits 2 otherwise)."""
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("splice", help="grey borders of chains that switch from DDPM A to DDPM B at step k")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--T", type=int, default=50, help="sampling steps (respaced)")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--switch", type=_integers, default="50,40,30,20,10,0", help="switch points k (A at steps i >= k)")
    q = sub.add_parser("offset", help="how much of a lifted background one denoising step keeps")
    q.add_argument("models", nargs="+")
    q.add_argument("--dataset", default="mnist5k")
    q.add_argument("--data-dir", default="data")
    q.add_argument("--n", type=int, default=500, help="real images (those with a black border of the first n)")
    q.add_argument("--delta", type=float, default=0.05, help="background lift in the model range [-1, 1]")
    q.add_argument("--t", type=_integers, default="20,50,100,200,300", help="noise levels (training-schedule indices)")
    for sp in (p, q):
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--ring", type=int, default=3, help="border width in pixels")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small networks: one thread is fastest, and a busy machine does not collapse it
    try:
        run(parser, args)
    except ValueError as error:  # a model argument of the wrong kind: one line naming it, exit 2
        parser.error(str(error))


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command == "splice":
        if not all(0 <= k <= args.T for k in args.switch):
            parser.error(f"--switch: expected step indices from 0 to --T ({args.T}), got {args.switch}")
        splice(args.a, args.b, args.T, args.n, args.seed, args.switch, args.ring)
        return
    ts = args.t
    real = to_model_range(load_dataset(args.dataset, args.data_dir).images[:args.n])
    real = real[border_means(real, args.ring) <= -1]  # black borders only: any border left in x0-hat is the model's
    if not len(real):
        parser.error(f"--n: none of the first {args.n} {args.dataset} images has a black {args.ring}-px border")
    print(f"{len(real)} real images with a black {args.ring}-px border; lift {args.delta:g}; "
          f"{'retention' if args.delta else 'bias'} of the one-step x0 per t", flush=True)
    for path in args.models:
        kept = offset_retention(path, real, args.delta, ts, args.seed, args.ring)
        print(f"{path}: " + ", ".join(f"t={t}: {v:.3f}" for t, v in zip(ts, kept)), flush=True)


if __name__ == "__main__":
    main()
