"""The study's table: DDPM at many steps against DDGAN at few steps, for each per-step objective.

    python -m fastddgan.experiments.compare --dataset ring8 --out benchmarks/results/study-2d/ring8 --jobs 2
    python -m fastddgan.experiments.compare --dataset mnist5k --out results/mnist5k --steps 20000 --device cuda

One DDPM (trained at ``--ddpm-T``, sampled with ``--ddpm-sample-T`` ancestral steps: the many-step settings, and the
few-step ones that show the Gaussian reverse step failing) and one DDGAN per (objective, T) in ``--losses`` x
``--ddgan-T``, each trained once per seed of ``--seeds`` (seed-major: every cell of one seed before the next seed);
``--guided`` adds class-conditional cells (``--cond``), one row per classifier-free guidance weight of
``--guidance`` (Ho & Salimans 2022). Each run is ``python -m fastddgan.train`` with the trainer's defaults (unless
``--steps`` / ``--train-args`` say otherwise) in ``RUNS/<name>-seed<S>`` (a finished run is reused, an interrupted
one resumed, an evaluation already made is read back, so the command can be stopped and re-run; with ``--jobs N`` N
runs train at a time and each is scored as soon as it is trained; a reused run whose saved settings differ from what
the trainer would use now, e.g. after a default changed, is named in a warning, in its record and in ``table.md``),
then ``fastddgan.evaluate``: exact metrics on 2-D data, FID-dom / IS-dom on images (with ``--classifier``, or the
data set's cached classifier, trained first if missing; evaluations scored with another classifier file are named in
``table.md``), and FID / IS with ``--inception-weights``. A run's export (``RUNS/<name>/export/``, its sampling
network as the trainer writes it: 2 MB for the CPU digit networks) is enough to evaluate it again (new metrics,
another classifier) when its checkpoints are gone. Outputs in ``--out``: ``table.md`` (mean ± std over seeds),
``summary.md`` (the headline metrics as an objective x T matrix), ``table.csv``, ``results.json`` (every seed's
record), ``figure.png`` (one scatter plot or sample grid per row and seed, captioned with its headline number)
and, for runs trained with ``--train-args "--eval-every N"``, ``training-scores.md`` (each run's in-training
scores by step).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from .. import _checks
from .. import evaluate as E
from .._io import atomic_write, atomic_write_json
from .._machine import UNRECORDED
from ..data import load_dataset
from ..data.registry import describe as describe_dataset
from ..losses import LOSSES
from ..metrics.cache import file_tag
from ..train import config as train_config
from .study_report import (FIGURE_IMAGES, FIGURE_POINTS, NOT_SCORED, NOT_TRAINED, classifier_note, figure,
                           machines_note, tile, write_summary, write_table, write_training_scores)
from .study_runs import (STOPPING, StudyInterrupted, described, in_subprocess, interrupt_children, run_training,
                         signals_interrupt, trained_model, unless_stopped)


def _ints(text: str) -> List[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _evaluation_path(out: str, T: int, n: int, seed: int, metrics: str, guidance: Optional[float] = None) -> str:
    """The stored evaluation of a run at T sampling steps (``-w<guidance>`` for a class-conditional run)."""
    weight = "" if guidance is None else f"-w{guidance:g}"
    return os.path.join(out, f"evaluation-T{T}{weight}-n{n}-seed{seed}-{metrics.replace(',', '+')}.pt")


def _finished(name: str, runs: str, paths: List[str]) -> Optional[Dict[str, Any]]:
    """A run whose every evaluation is stored already, described from its folder without its checkpoints (which
    need not be kept: a study committed without them is still reused in the next session)."""
    out = os.path.join(runs, name)
    if not (paths and all(os.path.isfile(p) for p in paths) and os.path.isfile(os.path.join(out, "config.json"))):
        return None
    return described(name, out, None)


def _config_drift(out: str, argv: List[str], device: Optional[str]) -> List[str]:
    """The options that must match on resume (``train.config.incompatible``) on which a run's saved config differs
    from what ``python -m fastddgan.train ARGV`` would use now, e.g. because a default changed after the run was
    trained; [] when they agree or when the run cannot be checked (no config.json, arguments the trainer refuses)."""
    try:
        with open(os.path.join(out, "config.json")) as f:
            stored = json.load(f)
        raw = train_config.parse(list(argv) + ["--out", out])
        raw["threads"] = raw["threads"] or 1  # not compared; spares resolve measuring the busy cores for every run
        info = {**describe_dataset(raw["dataset"], raw.get("image_size"), raw.get("channels")), "size": None,
                "world_size": stored.get("world_size", 1),
                "device": _checks.default_device(device)}
        current = train_config.resolve(raw, info)
    except (OSError, ValueError, KeyError, TypeError, SystemExit):  # ConfigError is a ValueError
        return []
    return train_config.incompatible(stored, current)


def _run_name(cell: str, seed: int) -> str:
    return f"{cell}-seed{seed}"


def _run_argv(common: List[str], cell: "Cell", seed: int) -> List[str]:
    """The trainer's arguments for one run of ``cell`` (without ``--out``)."""
    return common + cell.argv + ["--seed", str(seed)]


def _evaluation_paths(runs: str, cell: "Cell", seed: int, metrics: str, args) -> List[str]:
    return [_evaluation_path(os.path.join(runs, _run_name(cell.name, seed)), T, args.n, seed, metrics, w)
            for T, w in cell.samplings]


def _seed_major(plan: List["Cell"], seeds: List[int]):
    """The order runs are trained in: every cell of the first seed, then of the next, so that a study stopped
    part-way (or spread over sessions) has a whole table of one seed before it adds seeds."""
    return [(seed, cell) for seed in seeds for cell in plan]


def _pending(plan, seeds: List[int], common: List[str], runs: str, metrics: str,
             args) -> List[Tuple[str, List[str], bool]]:
    """(run name, trainer arguments, trained already) of every run with an evaluation still to make: not trained
    yet (no final checkpoint or export), or trained and not yet scored; seed-major."""
    pending = []
    for seed, cell in _seed_major(plan, seeds):
        run_name = _run_name(cell.name, seed)
        if not _finished(run_name, runs, _evaluation_paths(runs, cell, seed, metrics, args)):
            trained = trained_model(os.path.join(runs, run_name)) is not None
            pending.append((run_name, _run_argv(common, cell, seed), trained))
    return pending


class _StudyProgress:
    """One line as each training run starts (runs done of those this invocation trains, and the time left at the
    pace so far, evaluations included), one as it ends and one when its evaluation (--jobs) ends."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.time()
        self.lock = threading.Lock()  # one line at a time from the --jobs threads (print writes the newline apart)

    def starting(self, run_name: str) -> None:
        with self.lock:
            self._say(f"training {run_name} ({self.done}/{self.total} done, "
                      f"{_eta(self.start, self.done, self.total)})")

    def finished(self, run_name: str, result: Dict[str, Any]) -> None:
        with self.lock:
            self.done += 1
            self._say(f"finished {run_name}: {result['status']}, {result['train_seconds']:.0f} s")

    def evaluated(self, run_name: str, rc: int, seconds: float) -> None:
        with self.lock:
            self._say(f"evaluated {run_name}, {seconds:.0f} s" if rc == 0 else
                      f"evaluation of {run_name} failed (exit {rc}, see its log; made again for the table)")

    @staticmethod
    def _say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _train_ahead(pending: List[Tuple[str, List[str], bool]], runs: str, args, study_argv: List[str]) -> None:
    """With ``--jobs N > 1``: train every run still to train and evaluate it, N runs at a time, each step a child
    process with one thread (the evaluation: this command with ``--evaluate-run``), before the table is made;
    prints each start with an estimate of the time left. A run is scored as soon as it is trained, so a study
    stopped part-way keeps the evaluations of its finished runs (and no core waits for a long evaluation at the
    end); an evaluation that fails here is made again, and its error reported, when the table is made."""
    if args.jobs <= 1 or args.report_only or not pending:
        return
    os.makedirs(runs, exist_ok=True)
    STOPPING.clear()
    progress = _StudyProgress(sum(not trained for _, _, trained in pending))

    def work(item):
        run_name, argv, trained = item
        if STOPPING.is_set():
            return
        try:
            if not trained:
                progress.starting(run_name)
                result = run_training(run_name, argv, runs, child=True, jobs=args.jobs, device=args.device)
                progress.finished(run_name, result)
                if result["status"] != "ok":
                    return
            start = time.time()
            progress.evaluated(run_name, _evaluate_in_subprocess(run_name, runs, study_argv), time.time() - start)
        except BaseException:
            STOPPING.set()  # before this thread takes the next run
            raise

    with signals_interrupt(), ThreadPoolExecutor(args.jobs) as pool:
        futures = []
        try:
            futures += [pool.submit(work, item) for item in pending]  # the first start while the rest are queued
            done = wait(futures, return_when=FIRST_EXCEPTION)[0]
            for future in futures:  # a run that raised (e.g. stopped by a signal) stops the study at once
                if future in done:
                    future.result()
        except BaseException as stop:
            # an interrupt of the study, or one of its runs stopped by a signal: start no further run and stop the
            # others (each writes a checkpoint; a re-run resumes them)
            pool.shutdown(wait=False, cancel_futures=True)
            interrupt_children()
            if isinstance(stop, KeyboardInterrupt):
                raise StudyInterrupted(130) from None
            raise


def _evaluate_in_subprocess(run_name: str, runs: str, study_argv: List[str]) -> int:
    """Every evaluation of one trained run, by this command with ``--evaluate-run RUN`` in a child process (its
    output appended to the run's log); returns its exit status, raises StudyInterrupted when it was stopped by a
    signal."""
    return unless_stopped(in_subprocess(["-m", "fastddgan.experiments.compare"] + study_argv +
                                          ["--evaluate-run", run_name], os.path.join(runs, run_name) + ".log"))


def _evaluate_run(run_name: str, plan: List["Cell"], seeds: List[int], runs: str, metrics: str, args) -> int:
    """``--evaluate-run RUN``: store every evaluation of one trained run of the study (the rows of its cell), as
    the table would make them, and exit; 2 when the study has no such run or it is not trained."""
    for seed, cell in _seed_major(plan, seeds):
        if _run_name(cell.name, seed) != run_name:
            continue
        out = os.path.join(runs, run_name)
        source = trained_model(out)
        if source is None:
            break
        run = described(run_name, out, source)
        with signals_interrupt():  # also when started with SIGINT ignored (a --jobs child of a `cmd &` study)
            for T, w in cell.samplings:
                print(f"evaluating {run_name} at T={T}" + ("" if w is None else f", w={w:g}"), flush=True)
                print(E.summary(_evaluate(run, T, w, args.n, seed, metrics, args)), flush=True)
        return 0
    print(f"python -m fastddgan.experiments.compare: error: --evaluate-run: {run_name!r} is not a trained run of "
          f"this study", file=sys.stderr)
    return 2


def _eta(start: float, done: int, total: int) -> str:
    if not done:
        return "time left unknown yet"
    return f"about {(time.time() - start) / done * (total - done) / 60:.0f} min left"


@dataclass
class Cell:
    """One trained configuration of the study (trained once per seed) and the samplings of its table rows:
    (sampling steps, guidance weight or None for an unconditional model)."""

    model: str
    objective: str
    T: int
    argv: List[str]
    samplings: List[Tuple[int, Optional[float]]]
    cond: bool = False

    @property
    def name(self) -> str:
        base = f"ddpm-T{self.T}" if self.model == "ddpm" else f"ddgan-{self.objective}-T{self.T}"
        return base + ("-cond" if self.cond else "")

    def row(self, T_sampled: int, guidance: Optional[float]) -> str:
        return (self.name + (f" sampled T={T_sampled}" if self.model == "ddpm" else "") +
                ("" if guidance is None else f" w={guidance:g}"))


def _evaluate(run: Dict[str, Any], T: int, guidance: Optional[float], n: int, seed: int, metrics: str,
              args) -> Dict[str, Any]:
    """``fastddgan.evaluate`` of a run at T sampling steps (with classifier-free guidance w for a
    class-conditional run, balanced labels), stored in the run folder with the samples the figure shows (the
    first 2,000 points of 2-D data, 64 images) and read back when the same evaluation is asked again."""
    path = _evaluation_path(run["out"], T, n, seed, metrics, guidance)
    if os.path.isfile(path):
        return torch.load(path, weights_only=True)
    record = E.evaluate(run["checkpoint"], metrics=metrics, n=n, T=T, seed=seed, dataset=args.dataset,
                        data_dir=args.data_dir, batch_size=EVALUATION_BATCH, partial=path + PARTIAL_SUFFIX,
                        inception_weights=args.inception_weights, classifier=args.classifier, device=args.device,
                        keep_samples=True, guidance=guidance or 0.0)
    samples = record.pop("samples")
    # what the figure shows, copied: a slice saved as it is would write the whole tensor's storage
    samples = samples[:FIGURE_POINTS if samples.dim() == 2 else FIGURE_IMAGES].cpu().clone()
    record = json.loads(json.dumps(record, default=str))  # plain types only: read back with weights_only=True
    record["samples"] = samples
    atomic_write(path, lambda f: torch.save(record, f))
    return record


# An evaluation draws its samples in chunks of EVALUATION_BATCH and keeps the finished ones in the evaluation's
# path + PARTIAL_SUFFIX until it is stored, so that one stopped part-way (a session's end in the middle of a
# 1,000-step DDPM draw: two hours on one CPU core) continues where it was. 100, not fastddgan.evaluate's 500:
# a chunk is then about 10 minutes of that draw.
EVALUATION_BATCH, PARTIAL_SUFFIX = 100, ".partial"


def _write_results(rows: List[Dict[str, Any]], args, argv: Optional[Sequence[str]]) -> None:
    atomic_write_json(os.path.join(args.out, "results.json"),
                      {"dataset": args.dataset, "torch": torch.__version__, "argv": list(argv or sys.argv[1:]),
                       "rows": rows})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fastddgan.experiments.compare", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--dataset", required=True, help="ring8, grid25, swissroll, mnist5k, fashion-mnist, ...")
    p.add_argument("--out", required=True, help="folder for table.md, summary.md, table.csv, results.json, "
                   "figure.png")
    p.add_argument("--runs", help="folder for the training runs (default: OUT/runs)")
    p.add_argument("--losses", default=",".join(LOSSES), help="objectives (default: all five)")
    p.add_argument("--ddgan-T", default="3,4,5,10", help="DDGAN step counts of every objective (default: 3,4,5,10)")
    p.add_argument("--extra", default="js:1,js:2,js:8", help="further DDGAN cells as OBJECTIVE:T, e.g. the few-step "
                   "end of the standard GAN (default: js:1,js:2,js:8; '' for none)")
    p.add_argument("--guided", default="", help="class-conditional cells sampled with classifier-free guidance, "
                   "as OBJECTIVE:T for a DDGAN or ddpm:S for the DDPM (trained at --ddpm-T, sampled at S steps), "
                   "e.g. js:4,ddpm:50 (default: none; needs a data set with labels)")
    p.add_argument("--guidance", default="0,0.5,1,2", help="guidance weights w of every --guided cell, one row "
                   "each (w = 0: conditional, unguided; default: 0,0.5,1,2)")
    p.add_argument("--ddpm-T", type=int, default=1000, help="DDPM training T (default: 1000)")
    p.add_argument("--ddpm-sample-T", default="3,5,10,50,300,1000", help="DDPM sampling steps (default: "
                   "3,5,10,50,300,1000)")
    p.add_argument("--steps", type=int, default=None, help="DDGAN training steps per run (default: the trainer's)")
    p.add_argument("--ddpm-steps", type=int, default=None, help="DDPM training steps (default: the trainer's)")
    p.add_argument("--batch-size", type=int, default=None, help="training batch (default: the trainer's)")
    p.add_argument("--n", type=int, default=4000, help="samples per evaluation (default: 4000)")
    p.add_argument("--seeds", default="0,1,2", help="training (and sampling) seeds: each cell is trained once per "
                   "seed and reported as mean ± std (default: 0,1,2)")
    p.add_argument("--report-only", action="store_true", help="train and score nothing: write the table, results "
                   "and figure from the evaluations stored so far (a study spread over sessions); runs not trained "
                   "yet are marked 'to do', trained runs not yet scored 'to score'")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, each trained and then evaluated in child "
                   "processes with one thread, so a stopped study keeps the scores of its finished runs (e.g. 2 on a "
                   "2-core machine; default: 1, in this process)")
    p.add_argument("--device", choices=("cpu", "cuda"))
    p.add_argument("--data-dir", default="data")
    p.add_argument("--inception-weights", help="also compute Inception FID / IS (images)")
    p.add_argument("--classifier", help="the domain classifier file of FID-dom / IS-dom (images; default: "
                   "DATA_DIR's cache, classifier-DATASET.pt; trained there, or at this path, when missing). A study "
                   "spread over machines passes one kept file: classifiers trained alike on other CPUs differ")
    p.add_argument("--train-args", default="", help="extra flags for every training run, e.g. \"--preset tiny\"")
    p.add_argument("--evaluate-run", help=argparse.SUPPRESS)  # one trained run's evaluations (a --jobs child)
    return p


def _name_T_cells(text: str, names) -> Optional[List[Tuple[str, int]]]:
    """``NAME:T,NAME:T,...`` (``--extra``, ``--guided``) as (name, T) pairs; None unless every name is one of
    ``names`` and every T an integer >= 1."""
    try:
        cells = [(cell.split(":")[0].strip(), int(cell.split(":")[1])) for cell in text.split(",") if cell.strip()]
    except (IndexError, ValueError):
        return None
    return None if any(name not in names or T < 1 for name, T in cells) else cells


def _guided_cells(args, data) -> Tuple[Optional[List[Tuple[str, int]]], List[float]]:
    """``--guided`` as (objective or "ddpm", T) pairs and ``--guidance`` as weights; (None, []) after printing
    the error of a bad value."""
    def error(message: str):
        print(f"python -m fastddgan.experiments.compare: error: {message}", file=sys.stderr)
        return None, []

    cells = _name_T_cells(args.guided, list(LOSSES) + ["ddpm"])
    if cells is None:
        return error(f"--guided: expected OBJECTIVE:T (objective of {list(LOSSES)}) or ddpm:S cells with T, S >= 1, "
                     f"e.g. js:4,ddpm:50; got {args.guided!r}")
    try:
        weights = [float(w) for w in args.guidance.split(",") if w.strip()]
    except ValueError:
        weights = []
    if not weights or any(not math.isfinite(w) or w < 0 for w in weights):
        return error(f"--guidance: expected comma-separated weights >= 0, e.g. 0,1,2; got {args.guidance!r}")
    if cells and not getattr(data, "num_classes", None):
        return error(f"--guided: the data set {args.dataset!r} has no class labels (guidance needs a "
                     f"class-conditional model)")
    return cells, weights


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        return _study(argv)
    except StudyInterrupted as stop:
        print(f"python -m fastddgan.experiments.compare: stopped (status {stop.status}: the study or one of its "
              f"training runs was interrupted); run the same command again to continue", file=sys.stderr)
        return stop.status


def _study(argv: Optional[Sequence[str]]) -> int:
    args = build_parser().parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    runs = args.runs or os.path.join(args.out, "runs")
    data = load_dataset(args.dataset, data_dir=args.data_dir)
    kind = data.kind
    losses = [v.strip() for v in args.losses.split(",") if v.strip()]
    unknown = [v for v in losses if v not in LOSSES]
    if unknown:
        print(f"python -m fastddgan.experiments.compare: error: --losses: unknown {unknown}; expected {list(LOSSES)}",
              file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"python -m fastddgan.experiments.compare: error: --jobs: expected an integer >= 1, got {args.jobs}",
              file=sys.stderr)
        return 2
    extra = _name_T_cells(args.extra, LOSSES)
    if extra is None:
        print(f"python -m fastddgan.experiments.compare: error: --extra: expected OBJECTIVE:T cells with an objective "
              f"of {list(LOSSES)} and T >= 1, e.g. js:1,js:2; got {args.extra!r}", file=sys.stderr)
        return 2
    guided, weights = _guided_cells(args, data)
    if guided is None:
        return 2
    try:
        seeds = _ints(args.seeds)
    except ValueError:
        seeds = []
    if not seeds:
        print(f"python -m fastddgan.experiments.compare: error: --seeds: expected comma-separated integers, got "
              f"{args.seeds!r}", file=sys.stderr)
        return 2
    common = ["--dataset", args.dataset, "--data-dir", args.data_dir, "--sample-every", "0",
              "--log-every", "100"] + args.train_args.split()
    if args.batch_size:
        common += ["--batch-size", str(args.batch_size)]
    if args.device:
        common += ["--device", args.device]
    metrics = "toy" if kind == "toy" else ("fid-dom,is-dom" + (",fid,is" if args.inception_weights else ""))
    classifier_tag = None
    if kind != "toy":
        args.classifier = args.classifier or E.classifier_path(E.default_cache_dir(args.data_dir), args.dataset)
        if not os.path.isfile(args.classifier):
            E.train_domain_classifier(args.dataset, args.data_dir, args.classifier, epochs=6, seed=seeds[0],
                                      device=args.device)
        classifier_tag = file_tag(args.classifier)
    reference = data.sample(2000, generator=torch.Generator().manual_seed(seeds[0])) if kind == "toy" else None

    ddpm_steps = ["--steps", str(args.ddpm_steps)] if args.ddpm_steps else []
    ddgan_steps = ["--steps", str(args.steps)] if args.steps else []
    ddpm_argv = ["--model", "ddpm", "--T", str(args.ddpm_T)] + ddpm_steps
    plan = [Cell("ddpm", "—", args.ddpm_T, ddpm_argv, [(T_s, None) for T_s in _ints(args.ddpm_sample_T)])]
    # the cells of T = 4 (the sampler's default) first, then the rest: a study stopped part-way has its main row
    for loss, T in sorted({(loss, T) for loss in losses for T in _ints(args.ddgan_T)} | set(extra),
                          key=lambda cell: (cell[1] != 4, list(LOSSES).index(cell[0]), cell[1])):
        plan.append(Cell("ddgan", loss, T, ["--model", "ddgan", "--loss", loss, "--T", str(T)] + ddgan_steps,
                         [(T, None)]))
    for model, T in guided:  # class-conditional runs, one row per guidance weight
        argv_run = (ddpm_argv if model == "ddpm" else
                    ["--model", "ddgan", "--loss", model, "--T", str(T)] + ddgan_steps) + ["--cond"]
        plan.append(Cell("ddpm" if model == "ddpm" else "ddgan", "—" if model == "ddpm" else model,
                         args.ddpm_T if model == "ddpm" else T, argv_run, [(T, w) for w in weights], cond=True))
    if args.evaluate_run:
        return _evaluate_run(args.evaluate_run, plan, seeds, runs, metrics, args)
    pending = _pending(plan, seeds, common, runs, metrics, args)
    _train_ahead(pending, runs, args, list(argv) if argv is not None else sys.argv[1:])
    to_train = {name for name, _, trained in pending if not trained}
    progress = _StudyProgress(len(to_train))  # --jobs 1: trained in the loop
    cell_rows = {cell.name: [{"row": cell.row(T_s, w), "model": cell.model, "objective": cell.objective,
                              "T_trained": cell.T, "T_sampled": T_s, "guidance": w, "seeds": []}
                             for T_s, w in cell.samplings] for cell in plan}
    rows, tiles, drifted, other_classifier = [row for cell in plan for row in cell_rows[cell.name]], {}, {}, {}
    for seed, cell in _seed_major(plan, seeds):
        run_name, paths = _run_name(cell.name, seed), _evaluation_paths(runs, cell, seed, metrics, args)
        run = _finished(run_name, runs, paths)
        if run is None and args.report_only and trained_model(os.path.join(runs, run_name)) is None:
            for row in cell_rows[cell.name]:
                row["seeds"].append({"seed": seed, "status": NOT_TRAINED})
            continue
        if run is None:  # trained here (--jobs 1) or reused from its final checkpoint or export
            training = run_name in to_train and trained_model(os.path.join(runs, run_name)) is None
            if training:
                progress.starting(run_name)
            run = run_training(run_name, _run_argv(common, cell, seed), runs, device=args.device)
            if training:
                progress.finished(run_name, run)
        drift = _config_drift(run["out"], _run_argv(common, cell, seed), args.device)
        if drift:
            drifted[run_name] = drift
            print(f"warning: {run_name} was trained with other settings than this command uses now: "
                  f"{', '.join(drift)}", file=sys.stderr, flush=True)
        for row in cell_rows[cell.name]:
            record = {"seed": seed, "run": run_name, "steps": run.get("steps"),
                      "train_seconds": run["train_seconds"], "train_machines": run.get("train_machines", []),
                      "status": run["status"], **({"config_drift": drift} if drift else {})}
            evaluation = None
            if run["status"] == "ok" and args.report_only and not os.path.isfile(
                    _evaluation_path(run["out"], row["T_sampled"], args.n, seed, metrics, row["guidance"])):
                record["status"] = NOT_SCORED  # scored by the study's next run, not here (a DDPM draw takes hours)
            elif run["status"] == "ok":
                try:
                    evaluation = _evaluate(run, row["T_sampled"], row["guidance"], args.n, seed, metrics, args)
                except ValueError as e:  # e.g. a run that ended with non-finite weights
                    record["status"] = f"evaluation refused: {e}"
                    print(f"warning: {run_name}: {record['status']}", file=sys.stderr, flush=True)
            if evaluation is not None:
                record.update(metrics=evaluation["metrics"], images_per_s=evaluation["speed"]["images_per_s"],
                              eval_machine=evaluation.get("machine", UNRECORDED))
                scored_by = evaluation["metrics"].get("classifier")
                if scored_by is not None and scored_by.get("tag") != classifier_tag:
                    other_classifier.setdefault(scored_by.get("tag") or "untagged", []).append(row["row"] +
                                                                                              f" seed {seed}")
                row.update(nfe=evaluation["speed"]["nfe_per_image"], device=evaluation["device"])
                tiles.setdefault(row["row"], {})[seed] = tile(evaluation["samples"], reference)
                print(f"seed {seed}: " + E.summary(evaluation), flush=True)
            row["seeds"].append(record)
        _write_results(rows, args, argv)
    device = next((r["device"] for r in rows if "device" in r), "cpu")
    header = (f"# DDPM vs DDGAN per-step objectives on {args.dataset}\n\n"
              f"Command: `python -m fastddgan.experiments.compare {' '.join(argv or sys.argv[1:])}`; device: "
              f"{device}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}; {args.n} samples per evaluation; "
              f"mean ± std over seeds {','.join(map(str, seeds))} (training and sampling). Train time is the wall "
              f"time of one training run on this device; the figure shows every seed's samples.")
    if drifted:  # reused runs from before a default changed: the table mixes settings, and says so
        header += ("\n\n**Runs trained with other settings than this command uses now** (move a run's folder away "
                   "to train it again): " + "; ".join(f"`{name}`: {', '.join(d)}" for name, d in drifted.items()))
    if other_classifier:  # FID-dom / IS-dom of two classifier files are not comparable
        header += "\n\n" + classifier_note(classifier_tag, other_classifier)
    machines = machines_note(rows)
    if machines:  # times measured on several machines do not compare
        header += "\n\n" + machines
    rows.sort(key=lambda r: (r["model"] != "ddpm", r.get("guidance") is not None,
                             list(LOSSES).index(r["objective"]) if r["model"] == "ddgan" else 0, r["T_trained"],
                             r["T_sampled"], r.get("guidance") or 0.0))
    _write_results(rows, args, argv)
    write_table(rows, kind, args.out, header)
    write_summary(rows, kind, args.out, f"DDPM vs DDGAN per-step objectives on {args.dataset}")
    figure(rows, tiles, os.path.join(args.out, "figure.png"))
    scores = write_training_scores(runs, args.out)
    print(f"wrote {os.path.join(args.out, 'table.md')}, summary.md, table.csv, results.json, figure.png"
          + (f", {os.path.basename(scores)}" if scores else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
