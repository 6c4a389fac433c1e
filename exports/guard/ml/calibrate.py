"""Temperature scaling and threshold choice on the validation split (numpy only)."""
from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5


def _nll(logits: np.ndarray, y: np.ndarray, t: float) -> float:
    z = logits / t
    # log(1 + e^z) - y z, computed stably
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T > 0 minimising the negative log-likelihood of sigmoid(logits / T) (a log-spaced grid
    search, then a finer one around the best: no optimiser to diverge). 1.0 without both classes.

    >>> round(fit_temperature(np.array([4.0, -4.0, 4.0, -4.0]), np.array([1, 0, 0, 1])), 1) > 5
    True
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0 or y.min() == y.max():
        return 1.0
    grid = np.exp(np.linspace(np.log(0.05), np.log(50.0), 200))
    best = min(grid, key=lambda t: _nll(logits, y, t))
    fine = np.linspace(best * 0.95, best * 1.05, 41)
    return float(min(fine, key=lambda t: _nll(logits, y, t)))


def choose_threshold(y: np.ndarray, p: np.ndarray, *, lo: float = 0.01, hi: float = 0.99) -> float:
    """The probability threshold with the best F1 on (y, p); ties go to the higher threshold
    (fewer false alarms). 0.5 when there is no positive.

    >>> choose_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.35
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    if y.sum() == 0:
        return DEFAULT_THRESHOLD
    best_t, best_f1 = DEFAULT_THRESHOLD, -1.0
    for t in np.unique(p):
        pred = p >= t
        tp = int((pred & (y == 1)).sum())
        fp = int((pred & (y == 0)).sum())
        fn = int((~pred & (y == 1)).sum())
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 >= best_f1:
            best_t, best_f1 = float(t), f1
    return float(min(hi, max(lo, best_t)))
