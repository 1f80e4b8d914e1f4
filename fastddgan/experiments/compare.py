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
record) and ``figure.png`` (one scatter plot or sample grid per row, first seed).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import signal
import subprocess
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
from .._machine import machine_label
from ..checkpoint import EXPORT_CONFIG
from ..data import load_dataset
from ..data.registry import describe as describe_dataset
from ..data.convert import to_uint8, unit_to_uint8
from ..losses import LOSSES
from ..metrics.cache import file_tag
from ..train import config as train_config
from ..train import main as train_main
from ..train.plots import scatter_tile
from ._numbers import fixed_mean_std as _fixed_mean_std
from ._numbers import mean_std as _mean_std

def _ints(text: str) -> List[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _read_timing(path: str) -> Dict[str, Any]:
    """A run's ``timing.json``: ``train_seconds`` (the wall time of all its training segments) and ``segments``
    (each one's seconds, machine, jobs beside it and date; runs trained before machines were recorded lack them)."""
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _add_training_time(path: str, seconds: float, jobs: int, device: Optional[str]) -> None:
    """Add one training segment (a run trained, or resumed, by this study) to the run's ``timing.json``."""
    timing = _read_timing(path)
    segment = {"seconds": round(seconds, 1), "machine": machine_label(_checks.default_device(device)),
               "jobs": jobs, "date": time.strftime("%Y-%m-%d")}
    atomic_write_json(path, {"train_seconds": timing.get("train_seconds", 0.0) + seconds,
                             "segments": timing.get("segments", []) + [segment]})


UNRECORDED = "not recorded"  # the machine of training time or an evaluation from before machines were recorded


def _train_machines(timing: Dict[str, Any]) -> List[str]:
    """The machines a run's training time was spent on, in first-use order; ``UNRECORDED`` for the time that no
    segment accounts for (segments before machines were recorded)."""
    segments = timing.get("segments", [])
    machines = list(dict.fromkeys(seg["machine"] for seg in segments))
    if timing.get("train_seconds", 0.0) - sum(seg["seconds"] for seg in segments) > 1.0:
        machines.insert(0, UNRECORDED)
    return machines


class StudyInterrupted(Exception):
    """A training run ended by SIGINT / SIGTERM (exit status 128 + signal): the study stops, to be re-run later."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


_CHILDREN: set = set()  # the child processes of --jobs now running (signalled when the study is interrupted)
_CHILDREN_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set on an interrupt: no further child starts (one starting then is not missed)


def _in_subprocess(argv: List[str], log_path: str) -> int:
    """``python ARGV`` in a child process with one thread (for ``--jobs``: a training run or the evaluation of
    one), its output appended to ``log_path``; returns its exit status."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(log_path, "a") as log:
        with _CHILDREN_LOCK:
            if _STOPPING.is_set():
                return 128 + signal.SIGINT
            # a session of its own: Ctrl-C at a terminal reaches the study alone, which passes one SIGINT on (a
            # second one would stop the training at once, without its checkpoint)
            child = subprocess.Popen([sys.executable] + argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
            _CHILDREN.add(child)
        try:
            return child.wait()
        finally:
            with _CHILDREN_LOCK:
                _CHILDREN.discard(child)


def _train_in_subprocess(argv: List[str], out: str) -> int:
    """``python -m fastddgan.train ARGV`` as a child process, its output in ``OUT.log`` beside the run folder."""
    return _in_subprocess(["-m", "fastddgan.train"] + argv, out + ".log")


def _unless_stopped(rc: int) -> int:
    """A run's or child's exit status as a shell reports it (128 + N for one killed by signal N; Popen gives -N);
    raises StudyInterrupted for one stopped by a signal (a training saved its checkpoint, unless killed), which
    stops the study."""
    rc = 128 - rc if rc < 0 else rc
    if rc >= 128:
        raise StudyInterrupted(rc)
    return rc


def _interrupt_children() -> None:
    """Pass an interrupt of the study on to its child processes (they run in sessions of their own, so neither
    ``kill -INT`` of the study nor Ctrl-C reaches them): a training writes a checkpoint and stops, so a re-run
    resumes it; an evaluation keeps the chunks it has drawn (``PARTIAL_SUFFIX``) and continues from them."""
    with _CHILDREN_LOCK:
        _STOPPING.set()
        children = list(_CHILDREN)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    for child in children:
        child.wait()


def _run(name: str, argv: List[str], runs: str, in_subprocess: bool = False, jobs: int = 1,
         device: Optional[str] = None) -> Dict[str, Any]:
    """Train (or reuse / resume) one run; returns its folder, what to sample it from (final checkpoint, else the
    export the trainer wrote beside it), training length and wall time. ``jobs``: the runs trained at a time (for
    the record of this segment's machine and load)."""
    out = os.path.join(runs, name)
    timing_path = os.path.join(out, "timing.json")
    if _sampler(out) is None:
        resume = ["--resume", "auto"] if os.path.isdir(out) else []
        start = time.time()
        argv = argv + ["--out", out] + resume
        rc = _train_in_subprocess(argv, out) if in_subprocess else train_main(argv)
        if os.path.isdir(out):  # every segment's time counts, an interrupted one's too (it resumes next time)
            _add_training_time(timing_path, time.time() - start, jobs, device)
        rc = _unless_stopped(rc)
        if rc != 0:
            return {"name": name, "out": out, "checkpoint": None, "train_seconds": time.time() - start,
                    "status": f"training failed (exit {rc})"}
    return _described(name, out, _sampler(out))


def _final(out: str) -> str:
    return os.path.join(out, "checkpoints", "final.pt")


def _export(out: str) -> str:
    """The run's export folder: its sampling (EMA) network, which the trainer writes when it finishes (kept when
    checkpoints are not, e.g. in a committed study)."""
    return os.path.join(out, "export")


def _sampler(out: str) -> Optional[str]:
    """What a finished run is sampled from: its final checkpoint, else its export; None while it is not trained."""
    if os.path.isfile(_final(out)):
        return _final(out)
    return _export(out) if os.path.isfile(os.path.join(_export(out), EXPORT_CONFIG)) else None


def _described(name: str, out: str, checkpoint: Optional[str]) -> Dict[str, Any]:
    """A trained run as the table needs it: its length (config.json), training wall time and the machines it was
    measured on (timing.json)."""
    with open(os.path.join(out, "config.json")) as f:
        steps = json.load(f)["steps"]
    timing = _read_timing(os.path.join(out, "timing.json"))
    return {"name": name, "out": out, "checkpoint": checkpoint, "steps": steps, "status": "ok",
            "train_seconds": timing.get("train_seconds", float("nan")), "train_machines": _train_machines(timing)}


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
    return _described(name, out, None)


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


NOT_TRAINED = "not trained yet"


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
            trained = _sampler(os.path.join(runs, run_name)) is not None
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
    _STOPPING.clear()
    progress = _StudyProgress(sum(not trained for _, _, trained in pending))

    def work(item):
        run_name, argv, trained = item
        if _STOPPING.is_set():
            return
        try:
            if not trained:
                progress.starting(run_name)
                result = _run(run_name, argv, runs, in_subprocess=True, jobs=args.jobs, device=args.device)
                progress.finished(run_name, result)
                if result["status"] != "ok":
                    return
            start = time.time()
            progress.evaluated(run_name, _evaluate_in_subprocess(run_name, runs, study_argv), time.time() - start)
        except BaseException:
            _STOPPING.set()  # before this thread takes the next run
            raise

    with _signals_interrupt(), ThreadPoolExecutor(args.jobs) as pool:
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
            _interrupt_children()
            if isinstance(stop, KeyboardInterrupt):
                raise StudyInterrupted(130) from None
            raise


def _evaluate_in_subprocess(run_name: str, runs: str, study_argv: List[str]) -> int:
    """Every evaluation of one trained run, by this command with ``--evaluate-run RUN`` in a child process (its
    output appended to the run's log); returns its exit status, raises StudyInterrupted when it was stopped by a
    signal."""
    return _unless_stopped(_in_subprocess(["-m", "fastddgan.experiments.compare"] + study_argv +
                                          ["--evaluate-run", run_name], os.path.join(runs, run_name) + ".log"))


def _evaluate_run(run_name: str, plan: List["Cell"], seeds: List[int], runs: str, metrics: str, args) -> int:
    """``--evaluate-run RUN``: store every evaluation of one trained run of the study (the rows of its cell), as
    the table would make them, and exit; 2 when the study has no such run or it is not trained."""
    for seed, cell in _seed_major(plan, seeds):
        if _run_name(cell.name, seed) != run_name:
            continue
        out = os.path.join(runs, run_name)
        sampler = _sampler(out)
        if sampler is None:
            break
        run = _described(run_name, out, sampler)
        with _signals_interrupt():  # also when started with SIGINT ignored (a --jobs child of a `cmd &` study)
            for T, w in cell.samplings:
                print(f"evaluating {run_name} at T={T}" + ("" if w is None else f", w={w:g}"), flush=True)
                print(E.summary(_evaluate(run, T, w, args.n, seed, metrics, args)), flush=True)
        return 0
    print(f"python -m fastddgan.experiments.compare: error: --evaluate-run: {run_name!r} is not a trained run of "
          f"this study", file=sys.stderr)
    return 2


@contextlib.contextmanager
def _signals_interrupt():
    """SIGINT and SIGTERM raise StudyInterrupted in the study's main thread while it waits for its ``--jobs``
    children (the previous handlers are put back after). Set explicitly because a shell without job control starts
    ``cmd &`` with SIGINT ignored (Python then never raises KeyboardInterrupt, and ``kill -INT`` would not stop the
    study), and so that SIGTERM stops it the same way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise StudyInterrupted(128 + signum)  # the shell's status for it: 130 for SIGINT, 143 for SIGTERM

    before = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


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


FIGURE_POINTS, FIGURE_IMAGES = 2000, 64  # samples per figure tile (and kept in each stored evaluation)
# An evaluation draws its samples in chunks of EVALUATION_BATCH and keeps the finished ones in the evaluation's
# path + PARTIAL_SUFFIX until it is stored, so that one stopped part-way (a session's end in the middle of a
# 1,000-step DDPM draw: two hours on one CPU core) continues where it was. 100, not fastddgan.evaluate's 500:
# a chunk is then about 10 minutes of that draw.
EVALUATION_BATCH, PARTIAL_SUFFIX = 100, ".partial"


def _tile(samples: torch.Tensor, reference: Optional[torch.Tensor]) -> torch.Tensor:
    """A (3, 256, 256) uint8 picture of the samples: scatter plot (2-D) or an 8x8 grid (images)."""
    if reference is not None:
        return unit_to_uint8(scatter_tile(samples[:FIGURE_POINTS], reference, size=256))
    import torchvision.utils as vutils

    grid = vutils.make_grid(to_uint8(samples[:FIGURE_IMAGES]), nrow=8, padding=1)
    if grid.shape[0] == 1:
        grid = grid.expand(3, -1, -1)
    return torch.nn.functional.interpolate(grid[None], size=(256, 256), mode="nearest")[0]


def _figure(rows: List[Dict[str, Any]], tiles: Dict[str, torch.Tensor], path: str) -> None:
    """One labelled tile per table row, 4 per line (PIL for the labels)."""
    from PIL import Image, ImageDraw

    per_line, size, label_h = 4, 256, 28
    lines = math.ceil(len(rows) / per_line)
    canvas = Image.new("RGB", (per_line * size, lines * (size + label_h)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        key = row["row"]
        if key not in tiles:
            continue
        tile = tiles[key].permute(1, 2, 0).numpy()
        x, y = (i % per_line) * size, (i // per_line) * (size + label_h)
        canvas.paste(Image.fromarray(tile), (x, y + label_h))
        draw.text((x + 4, y + 8), key, fill="black")
    buffer = io.BytesIO()
    canvas.save(buffer, format="png")
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


METRIC_COLUMNS = {"toy": [("modes_covered", "modes"), ("high_quality", "high quality"),
                          ("spread", "spread (data 1)"), ("offset", "offset (std)"),
                          ("sliced_wasserstein", "sliced W1"), ("mmd2", "MMD^2")],
                  "image": [("FID-dom", "FID-dom"), ("FID-dom-balanced", "FID-dom balanced"), ("IS-dom", "IS-dom"),
                            ("classes", "classes"), ("class-min-share", "smallest class share"),
                            ("precision-dom", "precision-dom"), ("recall-dom", "recall-dom"),
                            ("label-accuracy", "label accuracy"), ("FID", "FID"), ("IS", "IS")]}
OPTIONAL_COLUMNS = ("label-accuracy",)  # shown only when a row measured it (the class-conditional rows)


def _guidance_label(w: Optional[float]) -> str:
    return "—" if w is None else ("0 (conditional)" if w == 0 else f"{w:g}")


def write_table(rows: List[Dict[str, Any]], kind: str, out: str, header: str) -> None:
    """``table.md`` / ``table.csv``: one line per row, each metric as mean ± std over the row's seeds; a metric
    measured on fewer of them (recorded only by newer evaluations) says on how many, "(of k)"."""
    cols = [(key, label) for key, label in METRIC_COLUMNS[kind] if key not in OPTIONAL_COLUMNS or
            any(key in s.get("metrics", {}) for r in rows for s in r["seeds"])]
    guided = any(r.get("guidance") is not None for r in rows)  # a guidance column only when a row has one
    names = ["model", "objective", "T trained", "T sampled"] + (["guidance w"] if guided else []) + \
        ["NFE", "steps trained", "seeds", "train time (s)"] + [label for _, label in cols] + ["images/s"]
    lines = []
    for r in rows:
        seeds = r["seeds"]
        done = [s for s in seeds if "metrics" in s]
        todo = sum(s.get("status") == NOT_TRAINED for s in seeds)

        def stat(key):
            values = [s["metrics"].get(key) for s in done]
            measured = sum(v is not None for v in values)  # a metric added later is missing from older records
            cell = _mean_std(values)
            return cell + (f" (of {measured})" if 0 < measured < len(done) else "")

        metric_cells = [(f"{stat(key)} / {done[0]['metrics']['num_modes']}" if key == "modes_covered" and done
                         else stat(key)) for key, _ in cols]
        failed = len(seeds) - len(done) - todo
        count = f"{len(done)}" + (f" (+{failed} failed)" if failed else "") + (f" ({todo} to do)" if todo else "")
        weight = [_guidance_label(r.get("guidance"))] if guided else []
        lines.append([r["model"], r["objective"], r["T_trained"], r["T_sampled"]] + weight + [r.get("nfe", "—"),
                      _mean_std([s.get("steps") for s in seeds]), count,
                      _mean_std([s.get("train_seconds") for s in seeds])] + metric_cells +
                     [_mean_std([s.get("images_per_s") for s in done])])
    with open(os.path.join(out, "table.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows(lines)
    md = [header, "", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    md += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(md) + "\n")


def _headline(kind: str, seeds: List[Dict[str, Any]]) -> str:
    """One summary cell: 2-D "modes / of, within 3 std % (mean ± std), spread", images "FID-dom mean ± std"; the
    number of seeds evaluated in brackets ("to do" when none is); a spread measured on fewer of them says on how
    many."""
    done = [s["metrics"] for s in seeds if "metrics" in s]
    if not done:
        return "to do"

    def stat(key, decimals, scale=1.0, counts=False):
        return _fixed_mean_std([None if m.get(key) is None else scale * m[key] for m in done], decimals, counts)

    if kind == "toy":
        spread = stat("spread", 2)
        measured = sum(m.get("spread") is not None for m in done)  # evaluations stored before spread existed lack it
        if 0 < measured < len(done):
            spread += f" (of {measured} seed{'s' if measured > 1 else ''})"
        cell = (f"{stat('modes_covered', 1, counts=True)}/{done[0]['num_modes']}, "
                f"{stat('high_quality', 1, 100.0)}%, {spread}")
    else:
        cell = stat("FID-dom", 2)
    return f"{cell} ({len(done)})"


def write_summary(rows: List[Dict[str, Any]], kind: str, out: str, title: str) -> None:
    """``summary.md``: the study at a glance. One matrix of the unguided DDGAN rows (an objective per line, a T
    per column) and one line of the DDPM by sampling steps, each cell the headline metrics (:func:`_headline`)."""
    what = ("modes covered / of, share within 3 std in % (mean ± std over seeds), spread (the modes' width over "
            "the data's, 1 is right)" if kind == "toy" else "FID-dom (mean ± std over seeds)")
    md = [f"# {title}: the study at a glance", "", f"Each cell: {what}; the seeds evaluated in brackets. The "
          f"other metrics, times and speeds: `table.md`.", ""]
    ddgan = [r for r in rows if r["model"] == "ddgan" and r.get("guidance") is None]
    if ddgan:
        Ts = sorted({r["T_trained"] for r in ddgan})
        md += ["| DDGAN | " + " | ".join(f"T = {T}" for T in Ts) + " |", "|---" * (len(Ts) + 1) + "|"]
        for objective in dict.fromkeys(r["objective"] for r in ddgan):
            cells = {r["T_trained"]: _headline(kind, r["seeds"]) for r in ddgan if r["objective"] == objective}
            md.append(f"| {objective} | " + " | ".join(cells.get(T, "") for T in Ts) + " |")
        md.append("")
    ddpm = [r for r in rows if r["model"] == "ddpm" and r.get("guidance") is None]
    for T_trained in dict.fromkeys(r["T_trained"] for r in ddpm):
        sampled = [r for r in ddpm if r["T_trained"] == T_trained]
        md += [f"| DDPM (trained at T = {T_trained}), sampling steps | " +
               " | ".join(str(r["T_sampled"]) for r in sampled) + " |", "|---" * (len(sampled) + 1) + "|",
               "| | " + " | ".join(_headline(kind, r["seeds"]) for r in sampled) + " |", ""]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(md))


def _classifier_note(current: str, other: Dict[str, List[str]]) -> str:
    """table.md's line naming the rows (and seeds) scored with another classifier file than ``current``, by tag."""
    parts = [("untagged (scored before evaluations recorded the file)" if tag == "untagged" else f"`{tag}`") +
             f": {', '.join(names)}" for tag, names in other.items()]
    return (f"**Scored with another domain classifier file than this command's** (`{current}`; their FID-dom / "
            f"IS-dom compare only with each other; delete an evaluation file to score its run again from its "
            f"checkpoint or export): " + "; ".join(parts))


def _machines_note(rows: List[Dict[str, Any]]) -> str:
    """table.md's line saying which machines the train times and images/s were measured on (a run resumed
    elsewhere counts its time on each): one machine named once, several with the runs and evaluations of each
    (those from before machines were recorded counted); "" when nothing was recorded."""
    trained: Dict[str, Dict[str, None]] = {}
    sampled: Dict[str, List[str]] = {}
    for row in rows:
        for s in row["seeds"]:
            for machine in s.get("train_machines", []):
                trained.setdefault(machine, {})[s["run"]] = None
            if "eval_machine" in s:
                sampled.setdefault(s["eval_machine"], []).append(f"{row['row']} seed {s['seed']}")
    machines = list(dict.fromkeys([m for m in list(trained) + list(sampled) if m != UNRECORDED]))
    if not machines:
        return ""
    if len(machines) == 1 and UNRECORDED not in trained and UNRECORDED not in sampled:
        return f"Train times and images/s measured on one machine: {machines[0]}."
    parts = []
    for machine in machines:
        what = ([f"trained {', '.join(trained[machine])}"] if machine in trained else []) + \
               ([f"sampled {', '.join(sampled[machine])}"] if machine in sampled else [])
        parts.append(f"{machine}: " + "; ".join(what))
    if UNRECORDED in trained or UNRECORDED in sampled:
        parts.append(f"{UNRECORDED} (before machines were recorded): {len(trained.get(UNRECORDED, {}))} training "
                     f"runs (or their first segments), {len(sampled.get(UNRECORDED, []))} evaluations")
    return ("**Train times and images/s come from several machines** (they compare only on one machine; a run "
            "resumed on another counts its time on each): " + "; ".join(parts) + ".")


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
    p.add_argument("--report-only", action="store_true", help="train nothing: write the table, results and "
                   "figure from the runs finished so far (a study spread over sessions), the rest marked 'to do'")
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
        if run is None and args.report_only and _sampler(os.path.join(runs, run_name)) is None:
            for row in cell_rows[cell.name]:
                row["seeds"].append({"seed": seed, "status": NOT_TRAINED})
            continue
        if run is None:  # trained here (--jobs 1) or reused from its final checkpoint or export
            training = run_name in to_train and _sampler(os.path.join(runs, run_name)) is None
            if training:
                progress.starting(run_name)
            run = _run(run_name, _run_argv(common, cell, seed), runs, device=args.device)
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
            if run["status"] == "ok":
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
                if row["row"] not in tiles:
                    tiles[row["row"]] = _tile(evaluation["samples"], reference)
                print(f"seed {seed}: " + E.summary(evaluation), flush=True)
            row["seeds"].append(record)
        _write_results(rows, args, argv)
    device = next((r["device"] for r in rows if "device" in r), "cpu")
    header = (f"# DDPM vs DDGAN per-step objectives on {args.dataset}\n\n"
              f"Command: `python -m fastddgan.experiments.compare {' '.join(argv or sys.argv[1:])}`; device: "
              f"{device}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}; {args.n} samples per evaluation; "
              f"mean ± std over seeds {','.join(map(str, seeds))} (training and sampling). Train time is the wall "
              f"time of one training run on this device; the figure shows seed {seeds[0]}.")
    if drifted:  # reused runs from before a default changed: the table mixes settings, and says so
        header += ("\n\n**Runs trained with other settings than this command uses now** (move a run's folder away "
                   "to train it again): " + "; ".join(f"`{name}`: {', '.join(d)}" for name, d in drifted.items()))
    if other_classifier:  # FID-dom / IS-dom of two classifier files are not comparable
        header += "\n\n" + _classifier_note(classifier_tag, other_classifier)
    machines = _machines_note(rows)
    if machines:  # times measured on several machines do not compare
        header += "\n\n" + machines
    rows.sort(key=lambda r: (r["model"] != "ddpm", r.get("guidance") is not None,
                             list(LOSSES).index(r["objective"]) if r["model"] == "ddgan" else 0, r["T_trained"],
                             r["T_sampled"], r.get("guidance") or 0.0))
    _write_results(rows, args, argv)
    write_table(rows, kind, args.out, header)
    write_summary(rows, kind, args.out, f"DDPM vs DDGAN per-step objectives on {args.dataset}")
    _figure(rows, tiles, os.path.join(args.out, "figure.png"))
    print(f"wrote {os.path.join(args.out, 'table.md')}, summary.md, table.csv, results.json, figure.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
