"""Number formatting shared by the experiment tables."""

from __future__ import annotations

import math
from typing import Any, List, Optional, Tuple


def fmt(value: Any) -> str:
    """Three significant digits (whole numbers from 100 up); "—" for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def mean_and_std(values: List[Any]) -> Tuple[Optional[float], Optional[float]]:
    """(mean, sample std) of the values that are present (not None or NaN); std None for one value, both None for
    none."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def mean_std(values: List[Any]) -> str:
    """"mean ± std" (sample std) of the values that are present; the bare mean for one value, "—" for none."""
    mean, std = mean_and_std(values)
    if mean is None:
        return "—"
    return fmt(mean) if std is None else f"{fmt(mean)} ± {fmt(std)}"  # one seed: no spread to state


def fixed_mean_std(values: List[Any], decimals: int, counts: bool = False) -> str:
    """"mean ± std" (as :func:`mean_and_std`) with ``decimals`` decimals; "—" for no value, the bare mean for one.
    ``counts`` (e.g. modes covered): whole numbers print without decimals and an all-equal std is left out."""
    mean, std = mean_and_std(values)
    if mean is None:
        return "—"

    def num(v: float) -> str:
        text = f"{v:.{decimals}f}"
        return f"{v:.0f}" if counts and float(text).is_integer() else text

    return num(mean) if std is None or (counts and std == 0) else f"{num(mean)} ± {num(std)}"
