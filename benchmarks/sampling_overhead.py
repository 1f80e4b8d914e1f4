"""What share of ``fastddgan.sample`` is spent outside the generator (issue 4's CPU goal: <= 5% at T=4, n=64 for
the 28x28 preset). Best of 3: four generator forwards alone vs a whole sampling call.

    python benchmarks/sampling_overhead.py [--preset mnist] [--n 64] [--T 4]
"""

import argparse
import time

import torch

import fastddgan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = fastddgan.from_preset("ddgan", args.preset, schedule=args.T).to(args.device)
    G = model.ema.module.eval()
    x = torch.randn(args.n, *model.sample_shape, device=args.device)
    z = torch.randn(args.n, model.nz, device=args.device)
    steps = [torch.full((args.n,), t, device=args.device) for t in reversed(range(args.T))]

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def generator_only():
        for t in steps:
            G(x, z, t)

    def whole():
        fastddgan.sample(model, n=args.n, seed=0)

    with torch.inference_mode():
        generator_only()
        whole()
        best = {}
        for _ in range(3):
            for name, fn in (("generator", generator_only), ("sample", whole)):
                sync()
                start = time.perf_counter()
                fn()
                sync()
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    share = 100 * (best["sample"] - best["generator"]) / best["sample"]
    print(f"{args.preset} preset, T={args.T}, n={args.n}, {args.device} ({torch.get_num_threads()} CPU threads), "
          f"torch {torch.__version__}: {args.T} generator forwards {best['generator'] * 1e3:.1f} ms, "
          f"fastddgan.sample {best['sample'] * 1e3:.1f} ms, outside the generator {share:.1f}%")


if __name__ == "__main__":
    main()
