"""Saying when a DDGAN discriminator goes flat: its input gradient collapses and the generator, whose only training
signal is that gradient, trains on almost nothing.

The measure is the logged R1 term r1 = E ||grad_{x_{t-1}} D(x_{t-1}, x_t, t)||^2 over true pairs (the metric
``r1`` of the D step; the Wasserstein critic logs its gradient penalty ``gp`` instead, which holds the input
gradient's norm near 1, and is not watched). Its geometric mean over the last ``span`` steps, m(s), is compared
with the highest such mean of the run so far: the discriminator is called flat at the first logged step s where
m(s) < ``fall`` * max m.

Chosen on the digit runs of ``benchmarks/results/{study,sweep}-mnist5k`` (r1 logged every 50-100 steps): of the
ten runs whose discriminator went flat there (divergence bounds at chance for every t: js and hellinger T = 10,
js T = 8 and seven T = 8 / 10 ablations), seven cross 1/100, between steps 900 and 1,600; the other three (T = 8
ablations stopped at steps 700-1,350) were at 1/12-1/60 when stopped. Of the runs whose D stayed alive the lowest
m / max m was 0.026 (c16-js-T4); the one other crossing (T = 4 with the cosine noise schedule, session 8) was a D
that fell 130-fold and came back. Geometric means, because r1 moves over decades and single 50-step records
scatter by 10x.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Deque, Dict, Iterable, Optional, Tuple

FALL = 1e-2  # flat: the windowed r1 below this fraction of its highest
SPAN = 500  # steps in the window

ADVICE = ("On 28x28 digits this happened at T >= 8 with the default 16-channel discriminator (at T = 10 the samples "
          "then got worse); a discriminator twice as wide (--net discriminator.ch=32) or with 4x its learning rate "
          "(--lr-d) stayed alive (benchmarks/results/sweep-mnist5k/README.md, sessions 33-37).")


class FlatDiscriminatorWatch:
    """Fed every logged training record (in step order); :meth:`update` returns the warning once, at the first
    record where the discriminator is flat, and None otherwise (also for runs that log no ``r1``)."""

    def __init__(self, fall: float = FALL, span: int = SPAN):
        if not 0 < fall < 1:
            raise ValueError(f"fall must be in (0, 1), got {fall}")
        if span < 1:
            raise ValueError(f"span must be a positive number of steps, got {span}")
        self.fall, self.span = fall, span
        self._clear()

    def _clear(self) -> None:
        self.window: Deque[Tuple[int, float]] = deque()  # (step, ln r1) of the records in the last span steps
        self.peak: Optional[Tuple[float, int]] = None  # (highest windowed mean, the step it ended at)
        self.fired = False

    def resume(self, records: Iterable[Dict[str, Any]]) -> None:
        """Replay the records of the run's past (metrics.jsonl up to the step resumed from), saying nothing; a
        warning already given (its ``discriminator_flat`` event) is not given again."""
        for record in records:
            if record.get("event") == "discriminator_flat":
                self.fired = True
            elif "event" not in record:
                self._add(record)

    def rewind(self, records: Iterable[Dict[str, Any]], step: int) -> None:
        """Start again from the run's records up to ``step``, as :meth:`resume` would there: a recovery went back to
        the checkpoint at ``step`` and the records after it belong to an abandoned stretch (a warning already said
        stays said)."""
        fired = self.fired
        self._clear()
        self.resume(r for r in records if r.get("step", 0) <= step)
        self.fired = self.fired or fired

    def update(self, record: Dict[str, Any]) -> Optional[str]:
        mean = self._add(record)
        if self.fired or mean is None or mean >= self.fall * self.peak[0]:
            return None
        self.fired = True
        peak, peak_step = self.peak
        return (f"the discriminator has gone flat at step {record['step']}: its R1 term (mean squared input "
                f"gradient on true pairs, geometric mean over the last {self.span} steps) is {mean:.1e}, 1/"
                f"{peak / mean:.0f} of its highest ({peak:.1e}, steps {max(peak_step - self.span, 0)}-{peak_step}). A "
                f"flat discriminator no longer tells true from generated pairs, so the generator trains on a "
                f"vanishing signal. " + ADVICE)

    def event(self) -> Dict[str, Any]:
        """The fields of the ``discriminator_flat`` event logged with the warning."""
        return {"r1_window_mean": self._mean(), "r1_peak": self.peak[0], "r1_peak_step": self.peak[1],
                "span": self.span, "fall": self.fall}

    def _add(self, record: Dict[str, Any]) -> Optional[float]:
        """Add one record; the windowed mean from step span on (the window then covers span steps), else None."""
        r1, step = record.get("r1"), record.get("step")
        if r1 is None or step is None or not math.isfinite(r1) or r1 < 0:
            return None
        self.window.append((step, math.log(max(r1, 1e-30))))
        while self.window[0][0] <= step - self.span:
            self.window.popleft()
        if step < self.span or len(self.window) < 2:
            return None
        mean = self._mean()
        if self.peak is None or mean > self.peak[0]:
            self.peak = (mean, step)
        return mean

    def _mean(self) -> float:
        return math.exp(sum(value for _, value in self.window) / len(self.window))


__all__ = ["FlatDiscriminatorWatch", "FALL", "SPAN"]
