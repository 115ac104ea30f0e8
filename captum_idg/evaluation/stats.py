"""Statistics of a run's rows: bootstrap intervals (over images, or over whole photos), the
sign test, and the grouping of records they are taken over."""

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from captum_idg.evaluation.results import Record

RESAMPLES = 4000


def mean_interval(values: Sequence[float], groups: Optional[Sequence[str]] = None,
                  resamples: int = RESAMPLES) -> Tuple[float, float, float]:
    """Mean and 95% bootstrap percentile interval of the mean. With ``groups``
    (for views, the photo each came from) whole groups are resampled, so
    views of one photo count as the correlated sample they are."""
    data = np.asarray(values, dtype=np.float64)
    _, group = np.unique(np.asarray(groups if groups is not None else np.arange(len(data))),
                         return_inverse=True)
    count = int(group.max()) + 1 if len(data) else 0
    if count < 2:
        return float(data.mean()), math.nan, math.nan
    sums, sizes = np.bincount(group, data, count), np.bincount(group, minlength=count)
    picks = np.random.default_rng(0).integers(0, count, size=(resamples, count))
    low, high = np.percentile(sums[picks].sum(axis=1) / sizes[picks].sum(axis=1), [2.5, 97.5])
    return float(data.mean()), float(low), float(high)


def photo(image: str) -> str:
    """The photo a view was cut from (``chelsea@0.8-tl-m`` -> ``chelsea``)."""
    return image.split("@", 1)[0]


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial p-value of ``wins`` against ``losses`` (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def group_records(records: Sequence[Record]) -> Dict[str, Dict[str, Dict[str, Record]]]:
    """``model -> method -> image -> record``."""
    groups: Dict[str, Dict[str, Dict[str, Record]]] = {}
    for r in records:
        groups.setdefault(r.model, {}).setdefault(r.method, {})[r.image] = r
    return groups
