"""Scores during training (``--eval-every N``): the EMA network sampled and scored as ``python -m fastddgan.evaluate``
scores it, every N steps and at the end, so that a run shows when its samples were best and keeps that network.

    metrics.jsonl   {"event": "eval", "step": s, "metrics": {...}, "key": "FID-dom", "value": v, "best": true, ...}
    curves.png      a panel of the scores against the step
    OUT/best/       the export (``fastddgan.load``-able) of the best-scoring network so far, with score.json

The selection key is the first of FID, FID-dom and (2-D data) sliced W1 that the chosen metrics compute; lower is
better. The samples come from a sampling seed of their own (:data:`EVAL_SEED`, not the study's 0, 1, 2), so a score
used to pick a network is not the draw a final evaluation reports; picking the best of many scores still flatters
it (each score at n = 1,000 moves by several percent with its draw). Scoring uses its own random streams and leaves
the training's untouched: a run with ``--eval-every`` trains the same weights as one without.

A resumed run keeps OUT/best/ when it was scored at or before the step it resumes from; one from a later step (of
a trajectory the resume discards) is removed, as is one whose score.json does not match its export.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from typing import Any, Callable, Dict, Optional

import torch

from .. import metrics as M
from .._io import atomic_write_json
from ..export import export
from ..metrics.cache import classifier_path, default_cache_dir
from ..metrics.choice import EvaluationError, choose_metrics
from ..sampling import sample
from .config import ConfigError

EVAL_SEED = 7919  # the in-training scores' sampling seed (and precision / recall's real draw)
SELECTION_KEYS = (("fid", "FID"), ("fid-dom", M.FID_DOM), ("toy", "sliced_wasserstein"))  # (metric, key), in order
BEST, SCORE = "best", "score.json"
SAMPLING_BATCH = 500


def _read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


class InTrainingScores:
    """Chooses the metrics when the run is configured (a missing classifier is refused before anything is
    written), :meth:`resume` checks OUT/best/ against the step the run starts from, then :meth:`score` scores the
    model at a step and keeps OUT/best/."""

    def __init__(self, c: Dict[str, Any], data, info: Dict[str, Any], out: str, device: torch.device):
        self.c, self.data, self.device = c, data, device
        self.toy = info["kind"] == "toy"
        self.cache_dir = default_cache_dir(c["data_dir"])
        self.clf_path = c["classifier"] or classifier_path(self.cache_dir, c["dataset"])
        requested = c["eval_metrics"] or "auto"
        no_classifier = (f"--classifier: no domain classifier at {self.clf_path} for --eval-metrics {requested}; "
                         f"train one with python -m fastddgan.evaluate --train-classifier --dataset {c['dataset']}")
        try:
            self.chosen = choose_metrics(requested, self.toy, self.clf_path, None)
        except EvaluationError as err:
            if requested == "auto":  # images with neither a classifier nor the Inception weights
                raise ConfigError(no_classifier) from None
            raise ConfigError("--eval-" + str(err).removeprefix("--")) from None
        if {"fid-dom", "is-dom"} & set(self.chosen) and not os.path.isfile(self.clf_path):
            raise ConfigError(no_classifier)
        self.inception = None
        if {"fid", "is"} & set(self.chosen):
            try:
                self.inception = M.InceptionMetrics(None, device=device.type)
            except M.InceptionWeightsNotFound as err:
                raise ConfigError(f"--eval-metrics: {err}") from None
        # the resolved config (config.json) records what is scored, with what
        c["eval_metrics"] = ",".join(self.chosen)
        if {"fid-dom", "is-dom"} & set(self.chosen):
            c["classifier"] = os.path.abspath(self.clf_path)
        self.key = next((key for metric, key in SELECTION_KEYS if metric in self.chosen), None)
        self.best_dir = os.path.join(os.path.abspath(out), BEST)
        self.best: Optional[Dict[str, Any]] = None

    # ------------------------------------------------------------------ OUT/best/
    def resume(self, start_step: int, say: Callable[[str], None]) -> None:
        """Keep OUT/best/ (its score.json as the best so far) when it belongs to this run's past: scored at or
        before ``start_step``, with this selection key, and its export of the same step; otherwise remove it."""
        self.best = None
        if not os.path.isdir(self.best_dir):
            return
        try:
            score, exported = (_read_json(os.path.join(self.best_dir, name)) for name in (SCORE, "config.json"))
            kept = score if (score.get("step") == exported.get("step") and score["step"] <= start_step
                             and score.get("key") == self.key) else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            kept = None
        if kept is None:
            say(f"warning: removed {self.best_dir} (a network scored after step {start_step}, which this run "
                f"resumes from, or with another --eval-metrics, or left incomplete); the next score fills it")
            shutil.rmtree(self.best_dir)
        self.best = kept

    def _keep(self, model, step: int, value: float) -> None:
        """The model's export to OUT/best/, then its score.json (the record that makes the folder valid)."""
        score_path = os.path.join(self.best_dir, SCORE)
        if os.path.exists(score_path):
            os.remove(score_path)  # the folder is incomplete until the new score.json is written
        export(model, self.best_dir)
        self.best = {"step": step, "key": self.key, "value": value}
        atomic_write_json(score_path, self.best)

    # ------------------------------------------------------------------ scoring
    def score(self, model, step: int) -> Dict[str, Any]:
        """Sample ``eval_n`` images (points) with :data:`EVAL_SEED` and score them; the 'eval' record's fields."""
        from ..evaluate import scores  # evaluate imports the trainer's config: import it when first used

        c = self.c
        began = time.perf_counter()
        labels = torch.arange(c["eval_n"]) % model.num_classes if model.num_classes else None
        T = c["sample_steps"] if c["model"] == "ddpm" else None
        x = sample(model, T, c["eval_n"], seed=EVAL_SEED, device=self.device, class_labels=labels,
                   batch_size=SAMPLING_BATCH).float().cpu()
        results = scores(x, self.chosen, self.data, c["dataset"], self.clf_path, self.inception, self.cache_dir,
                         self.device.type, EVAL_SEED, labels=labels)
        record: Dict[str, Any] = {"metrics": results, "n": c["eval_n"], "seed": EVAL_SEED,
                                  "T": T or c["T"], "key": self.key}
        if self.key is not None:
            value = float(results[self.key])
            record["value"] = value
            # a NaN score (samples gone non-finite) is never the best
            record["best"] = math.isfinite(value) and (self.best is None or value < self.best["value"])
            if record["best"]:
                self._keep(model, step, value)
        record["seconds"] = time.perf_counter() - began
        return record

    def summary(self, record: Dict[str, Any]) -> str:
        """'FID-dom 4.12 (best 3.80 at step 4000)' for the progress line."""
        if self.key is None:
            return ", ".join(f"{k} {v:.4g}" for k, v in record["metrics"].items() if isinstance(v, float))
        best = self.best or {}
        return (f"{self.key} {record['value']:.4g} (best {best.get('value', float('nan')):.4g} at step "
                f"{best.get('step')})")


__all__ = ["InTrainingScores", "EVAL_SEED", "SELECTION_KEYS", "BEST"]
