"""Names of the metrics.jsonl keys that more than one module writes or reads.

The family modules write them during training; the curves (:mod:`fastddgan.train.plots`), the progress line
(:mod:`fastddgan.train.progress`) and the study report read them. Living here, below the families, the readers
need not import a model family to parse a log.
"""

from __future__ import annotations

import re
from typing import Optional

# DDGAN's discriminator logs its divergence bound per reverse step t as divergence_t0, divergence_t1, ...
# (t = 0: the last step, the one to the data)
PER_STEP_DIVERGENCE = "divergence_t"
_PER_STEP_KEY = re.compile(PER_STEP_DIVERGENCE + r"(\d+)")


def per_step_divergence_key(t: int) -> str:
    """The metrics key of the discriminator's divergence bound on reverse step ``t``."""
    return f"{PER_STEP_DIVERGENCE}{t}"


def per_step_divergence_t(key: str) -> Optional[int]:
    """The reverse step t of a per-step divergence key, None for any other key."""
    match = _PER_STEP_KEY.fullmatch(key)
    return int(match.group(1)) if match else None
