"""Reliability (calibration) bins of P(unsafe), for the reliability diagram of an evaluation page.

:func:`reliability_bins` is pure numpy: the same equal-width bins as
:func:`exports.guard.ml.evaluate.expected_calibration_error`, so the diagram and the ECE figure
agree (ECE = sum over bins of count / n x |observed rate - mean predicted|).
:func:`evaluate_with_reliability` runs :func:`exports.guard.ml.evaluate.evaluate_folder` and adds
the bins to its report as ``"calibration"`` (unless the report already has them). Worker-only, like
the rest of ``ml/``: the web process reads the stored bins, it never computes them.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from exports.guard.ml.data import Example

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


class _Recording:
    """A loaded guard whose ``predict`` keeps its last P(unsafe) (everything else passes through)."""

    def __init__(self, guard: Any):
        self._guard = guard
        self.p_unsafe: np.ndarray | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._guard, name)

    def predict(self, pairs, **kwargs):
        p, pc = self._guard.predict(pairs, **kwargs)
        self.p_unsafe = np.asarray(p, dtype=np.float64)
        return p, pc


def evaluate_with_reliability(folder: str | Path, examples: Sequence[Example], *, device: str = "cpu", guard=None,
                              **kwargs: Any) -> dict[str, Any]:
    """:func:`~exports.guard.ml.evaluate.evaluate_folder`'s report plus ``"calibration"``: the
    reliability bins of the same predictions (no second pass over the data)."""
    from exports.guard.ml.evaluate import evaluate_folder

    if guard is None:
        from exports.guard.ml.modeling import LoadedGuard

        guard = LoadedGuard(folder, device=device)
    recording = _Recording(guard)
    report = evaluate_folder(folder, examples, device=device, guard=recording, **kwargs)
    if "calibration" not in report and recording.p_unsafe is not None:
        report["calibration"] = reliability_bins([ex.label for ex in examples], recording.p_unsafe)
    return report
