"""Reliability (calibration) bins of P(unsafe), for the reliability diagram of an evaluation page.

:func:`reliability_bins` is pure numpy: the same equal-width bins as
:func:`exports.guard.ml.evaluate.expected_calibration_error`, so the diagram and the ECE figure
agree (ECE = sum over bins of count / n x |observed rate - mean predicted|).
:func:`exports.guard.ml.evaluate.evaluate_predictions` puts them in every report as
``"calibration"``; the web process reads the stored bins, it never computes them.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

BINS = 10


def reliability_bins(y: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray, *, bins: int = BINS) -> list[dict[str, Any]]:
    """One entry per non-empty bin of [0, 1] (equal width; a probability of exactly 1 goes in the
    last bin): its edges, how many examples, their mean predicted P(unsafe), and the share of them
    that is unsafe.

    >>> reliability_bins([0, 0, 1, 1], [0.1, 0.15, 0.9, 1.0], bins=2)
    [{'lo': 0.0, 'hi': 0.5, 'count': 2, 'mean_predicted': 0.125, 'observed': 0.0}, {'lo': 0.5, 'hi': 1.0, 'count': 2, 'mean_predicted': 0.95, 'observed': 1.0}]
    >>> reliability_bins([], [])
    []
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} probabilities")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            out.append({"lo": round(b / bins, 6), "hi": round((b + 1) / bins, 6), "count": int(sel.sum()),
                        "mean_predicted": round(float(p[sel].mean()), 6), "observed": round(float(y[sel].mean()), 6)})
    return out
