"""The study's training runs (``python -m fastddgan.experiments.compare``): train, resume or reuse one run in its
folder, in this process or a child process (``--jobs``), with the wall time and machine of every training segment
in the run's ``timing.json``; and the stopping of the study and its children on SIGINT / SIGTERM (each training
writes its checkpoint, so the same command continues later)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from .. import _checks
from .._io import atomic_write_json
from .._machine import UNRECORDED, machine_label
from ..checkpoint import EXPORT_CONFIG
from ..train import main as train_main


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
STOPPING = threading.Event()  # set on an interrupt: no further child starts (one starting then is not missed)


def in_subprocess(argv: List[str], log_path: str) -> int:
    """``python ARGV`` in a child process with one thread (for ``--jobs``: a training run or the evaluation of
    one), its output appended to ``log_path``; returns its exit status."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(log_path, "a") as log:
        with _CHILDREN_LOCK:
            if STOPPING.is_set():
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
    return in_subprocess(["-m", "fastddgan.train"] + argv, out + ".log")


def unless_stopped(rc: int) -> int:
    """A run's or child's exit status as a shell reports it (128 + N for one killed by signal N; Popen gives -N);
    raises StudyInterrupted for one stopped by a signal (a training saved its checkpoint, unless killed), which
    stops the study."""
    rc = 128 - rc if rc < 0 else rc
    if rc >= 128:
        raise StudyInterrupted(rc)
    return rc


def interrupt_children() -> None:
    """Pass an interrupt of the study on to its child processes (they run in sessions of their own, so neither
    ``kill -INT`` of the study nor Ctrl-C reaches them): a training writes a checkpoint and stops, so a re-run
    resumes it; an evaluation keeps the chunks it has drawn (``PARTIAL_SUFFIX``) and continues from them."""
    with _CHILDREN_LOCK:
        STOPPING.set()
        children = list(_CHILDREN)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    for child in children:
        child.wait()


def run_training(name: str, argv: List[str], runs: str, child: bool = False, jobs: int = 1,
                 device: Optional[str] = None) -> Dict[str, Any]:
    """Train (or reuse / resume) one run, in this process or (``child``) a child process; returns its folder, what
    to sample it from (final checkpoint, else the export the trainer wrote beside it), training length and wall
    time. ``jobs``: the runs trained at a time (for the record of this segment's machine and load)."""
    out = os.path.join(runs, name)
    timing_path = os.path.join(out, "timing.json")
    if trained_model(out) is None:
        resume = ["--resume", "auto"] if os.path.isdir(out) else []
        start = time.time()
        argv = argv + ["--out", out] + resume
        rc = _train_in_subprocess(argv, out) if child else train_main(argv)
        if os.path.isdir(out):  # every segment's time counts, an interrupted one's too (it resumes next time)
            _add_training_time(timing_path, time.time() - start, jobs, device)
        rc = unless_stopped(rc)
        if rc != 0:
            return {"name": name, "out": out, "checkpoint": None, "train_seconds": time.time() - start,
                    "status": f"training failed (exit {rc})"}
    return described(name, out, trained_model(out))


def _final(out: str) -> str:
    return os.path.join(out, "checkpoints", "final.pt")


def _export(out: str) -> str:
    """The run's export folder: its sampling (EMA) network, which the trainer writes when it finishes (kept when
    checkpoints are not, e.g. in a committed study)."""
    return os.path.join(out, "export")


def trained_model(out: str) -> Optional[str]:
    """What a finished run is sampled from: its final checkpoint, else its export; None while it is not trained."""
    if os.path.isfile(_final(out)):
        return _final(out)
    return _export(out) if os.path.isfile(os.path.join(_export(out), EXPORT_CONFIG)) else None


def described(name: str, out: str, checkpoint: Optional[str]) -> Dict[str, Any]:
    """A trained run as the table needs it: its length (config.json), training wall time and the machines it was
    measured on (timing.json)."""
    with open(os.path.join(out, "config.json")) as f:
        steps = json.load(f)["steps"]
    timing = _read_timing(os.path.join(out, "timing.json"))
    return {"name": name, "out": out, "checkpoint": checkpoint, "steps": steps, "status": "ok",
            "train_seconds": timing.get("train_seconds", float("nan")), "train_machines": _train_machines(timing)}



@contextlib.contextmanager
def signals_interrupt():
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

