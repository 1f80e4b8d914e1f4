"""Which metrics ``python -m fastddgan.evaluate`` computes: the names it accepts and the ``auto`` choice.

    auto   toy for 2-D data; for images fid-dom,is-dom when the data set's domain classifier exists, plus fid,is
           when the Inception weights are found (an error when neither is there)
"""

from __future__ import annotations

import os
from typing import List, Optional

from .inception import InceptionWeightsNotFound, resolve_weights

IMAGE_METRICS = ("fid", "is", "fid-dom", "is-dom")
ALL_METRICS = IMAGE_METRICS + ("toy",)


class EvaluationError(ValueError):
    """Bad evaluation input; the message names the option."""


def choose_metrics(requested: str, toy: bool, clf_path: str, weights: Optional[str]) -> List[str]:
    """The metrics to compute: ``requested`` (comma-separated names, or "auto") checked against the kind of data
    (``toy``: 2-D); for auto, what the classifier file ``clf_path`` and the Inception ``weights`` allow."""
    if requested != "auto":
        chosen = [m.strip() for m in requested.split(",") if m.strip()]
        if not chosen:
            raise EvaluationError(f"--metrics: expected a comma-separated list of {ALL_METRICS} or auto, got "
                                  f"{requested!r}")
        unknown = [m for m in chosen if m not in ALL_METRICS]
        if unknown:
            raise EvaluationError(f"--metrics: unknown {unknown}; expected a comma-separated list of {ALL_METRICS} "
                                  f"or auto")
        if toy and any(m in IMAGE_METRICS for m in chosen):
            raise EvaluationError("--metrics: fid / is / fid-dom / is-dom are for images; 2-D data uses toy")
        if not toy and "toy" in chosen:
            raise EvaluationError("--metrics: toy is for the 2-D data sets")
        return chosen
    if toy:
        return ["toy"]
    chosen = ["fid-dom", "is-dom"] if os.path.isfile(clf_path) else []
    try:
        resolve_weights(weights)
        chosen += ["fid", "is"]
    except InceptionWeightsNotFound:
        pass
    if not chosen:
        raise EvaluationError(f"--metrics auto: nothing to compute for images: no domain classifier at {clf_path} "
                              f"(python -m fastddgan.evaluate --train-classifier --dataset NAME) and no Inception "
                              f"weights (--inception-weights PATH)")
    return chosen
