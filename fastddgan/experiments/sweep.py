"""``python -m fastddgan.experiments.sweep``: train and evaluate named training settings over several seeds, for
choosing defaults by measurement.

    python -m fastddgan.experiments.sweep --dataset ring8 --out results/sweep-ring8 --seeds 0,1,2 \\
        --cell "default=" --cell "ttur=--lr-g 2e-4 --lr-d 2e-3" --cell "wide=--steps 5000 --batch-size 512"

Each cell is ``name=flags`` (flags of ``python -m fastddgan.train``, added to ``--dataset D --seed S``). Every
(cell, seed) is trained in ``RUNS/name-sS`` and evaluated on ``--n`` samples with the data set's metrics (2-D: the
exact mixture metrics); its record is appended to ``OUT/results.jsonl`` as soon as it is done, so an interrupted
sweep continues where it stopped (finished cells are skipped). ``OUT/table.md`` gives mean ± std over seeds per
cell, with the training wall time and it/s (of the last training segment: a resumed run's it/s is left out) and
the machines they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import evaluate as E
from .._io import read_jsonl
from .._machine import UNRECORDED, machine_label
from ..train import main as train_main
from ._numbers import mean_std as _mean_std


def parse_cell(text: str) -> Tuple[str, List[str]]:
    name, sep, flags = text.partition("=")
    if not sep or not name.strip() or "/" in name:
        raise ValueError(f"--cell: expected NAME=FLAGS (a name without '/'), got {text!r}")
    return name.strip(), shlex.split(flags)


def done_records(path: str) -> Dict[Tuple[str, int], Dict[str, Any]]:
    return {(r["cell"], r["seed"]): r for r in read_jsonl(path)}


def run_cell(name: str, flags: List[str], seed: int, dataset: str, runs: str, n: int,
             metrics: Optional[str]) -> Dict[str, Any]:
    out = os.path.join(runs, f"{name}-s{seed}")
    argv = ["--dataset", dataset, "--seed", str(seed), "--out", out, "--sample-every", "0"] + flags
    resumed = os.path.isdir(out)
    if resumed:
        argv += ["--resume", "auto"]
    start = time.time()
    rc = train_main(argv)
    seconds = time.time() - start
    if rc >= 128:  # stopped by a signal (the run wrote a checkpoint): stop the sweep too; a re-run resumes it
        raise KeyboardInterrupt(f"training of {name} seed {seed} was stopped (exit {rc})")
    # a resumed run's seconds are those of its last segment only: its it/s is not known (None)
    record: Dict[str, Any] = {"cell": name, "seed": seed, "flags": flags, "train_exit": rc,
                              "train_seconds": seconds, "resumed": resumed, "machine": machine_label()}
    final = os.path.join(out, "checkpoints", "final.pt")
    if rc != 0 or not os.path.isfile(final):
        return record
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    evaluation = E.evaluate(final, metrics=metrics or "auto", n=n, seed=seed)
    record.update(metrics=evaluation["metrics"], steps=config["steps"], threads=config.get("threads"),
                  it_per_s=None if resumed else config["steps"] / seconds,
                  images_per_s=evaluation["speed"]["images_per_s"])
    return record


TOY_COLUMNS = [("modes_covered", "modes", 1), ("high_quality", "within 3 std (%)", 100),
               ("spread", "spread", 1), ("offset", "offset (std)", 1), ("sliced_wasserstein", "sliced W1", 1),
               ("mmd2", "MMD^2", 1)]


def write_table(records: List[Dict[str, Any]], cells: List[Tuple[str, List[str]]], path: str, header: str) -> None:
    lines = [header, "", "| cell | flags | seeds | " + " | ".join(c[1] for c in TOY_COLUMNS) +
             " | train s | it/s |", "|" + "---|" * (len(TOY_COLUMNS) + 5)]
    for name, flags in cells:
        rs = [r for r in records if r["cell"] == name and "metrics" in r]
        failed = [r for r in records if r["cell"] == name and "metrics" not in r]
        cols = [_mean_std([r["metrics"].get(key) * scale if r["metrics"].get(key) is not None else None
                           for r in rs]) for key, _, scale in TOY_COLUMNS]
        seeds = f"{len(rs)}" + (f" (+{len(failed)} failed)" if failed else "")
        lines.append(f"| {name} | `{' '.join(flags) or '(defaults)'}` | {seeds} | " + " | ".join(cols) +
                     f" | {_mean_std([r['train_seconds'] for r in rs])} | {_mean_std([r['it_per_s'] for r in rs])} |")
    machines = sorted({r.get("machine", UNRECORDED) for r in records})
    lines += ["", f"Train s and it/s measured on: {'; '.join(machines)}."]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastddgan.experiments.sweep", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True, help="folder for results.jsonl and table.md")
    p.add_argument("--runs", help="folder for the training runs (default: OUT/runs)")
    p.add_argument("--cell", action="append", required=True, help="NAME=FLAGS (repeat)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: 0,1,2)")
    p.add_argument("--n", type=int, default=4000, help="samples per evaluation (default: 4000)")
    p.add_argument("--metrics", help="evaluate's --metrics (default: auto)")
    args = p.parse_args(argv)
    try:
        cells = [parse_cell(c) for c in args.cell]
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as err:
        print(f"python -m fastddgan.experiments.sweep: error: {err}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    runs = args.runs or os.path.join(args.out, "runs")
    results = os.path.join(args.out, "results.jsonl")
    done = done_records(results)
    for name, flags in cells:
        for seed in seeds:
            if (name, seed) in done and done[(name, seed)].get("flags") == flags:
                continue
            try:
                record = run_cell(name, flags, seed, args.dataset, runs, args.n, args.metrics)
            except KeyboardInterrupt as stop:
                print(f"python -m fastddgan.experiments.sweep: stopped: {stop}; run the same command to continue",
                      file=sys.stderr)
                return 130
            with open(results, "a") as f:
                f.write(json.dumps(record, default=str) + "\n")
            done[(name, seed)] = record
            m = record.get("metrics", {})
            print(f"[sweep] {name} seed {seed}: " + (f"modes {m.get('modes_covered')}/{m.get('num_modes')}, within "
                  f"3 std {m.get('high_quality', float('nan')):.3f}" if m else f"failed (exit {record['train_exit']})")
                  + f", {record['train_seconds']:.0f} s", flush=True)
    header = (f"# Sweep on {args.dataset}\n\nCommand: `python -m fastddgan.experiments.sweep "
              f"{' '.join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))}`; "
              f"{args.n} samples per evaluation; mean ± std over seeds; {time.strftime('%Y-%m-%d')}.")
    records = [done[(name, seed)] for name, _ in cells for seed in seeds if (name, seed) in done]
    write_table(records, cells, os.path.join(args.out, "table.md"), header)
    print(f"wrote {os.path.join(args.out, 'table.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
