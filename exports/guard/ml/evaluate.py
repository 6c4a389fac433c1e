"""Metrics of a guard on labelled examples (numpy + scikit-learn; no torch at module level).

:func:`evaluate_predictions` is pure (predictions in, report out) so every number can be checked
against scikit-learn on literal inputs; :func:`evaluate_folder` loads a guard folder and predicts.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from exports.guard.ml.data import Example

WORST_ERRORS = 10
ECE_BINS = 10


def expected_calibration_error(y: np.ndarray, p: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """ECE of P(unsafe): equal-width bins on [0, 1]; sum over bins of (share of examples) x
    |observed unsafe rate - mean predicted probability|. A probability of exactly 1 goes in the last bin.

    >>> expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0]))
    0.0
    >>> round(expected_calibration_error(np.array([0, 0, 1, 1]), np.array([0.3, 0.3, 0.3, 0.3])), 3)
    0.2
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if len(y) == 0:
        return 0.0
    idx = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(ece)


def binary_report(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    from sklearn.metrics import (
        average_precision_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    pred = (p >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(y, pred, average="binary", pos_label=1, zero_division=0)
    both = len(np.unique(y)) == 2
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    safe = y == 0
    return {
        "n": int(len(y)),
        "unsafe": int(y.sum()),
        "threshold": float(threshold),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "auroc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if y.sum() else None,
        "ece": expected_calibration_error(y, p),
        # over-refusal: the share of safe examples flagged unsafe
        "flagged_safe_share": float(pred[safe].mean()) if safe.any() else None,
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
    }


def category_report(
    cat_true: np.ndarray, cat_prob: np.ndarray, codes: Sequence[str], thresholds: dict[str, float]
) -> dict[str, dict[str, Any]]:
    """P/R/F1/support per category code, on the examples whose categories are known
    (``cat_true`` [N, K] 0/1, ``cat_prob`` [N, K])."""
    from sklearn.metrics import precision_recall_fscore_support

    out: dict[str, dict[str, Any]] = {}
    if len(cat_true) == 0:
        return out
    for k, code in enumerate(codes):
        t = thresholds.get(code, 0.5)
        pred = (cat_prob[:, k] >= t).astype(int)
        yk = cat_true[:, k].astype(int)
        precision, recall, f1, _ = precision_recall_fscore_support(yk, pred, average="binary", pos_label=1, zero_division=0)
        out[code] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                     "support": int(yk.sum()), "predicted": int(pred.sum()), "threshold": float(t)}
    return out


def evaluate_predictions(
    examples: Sequence[Example],
    p_unsafe: np.ndarray,
    p_categories: np.ndarray,
    *,
    codes: Sequence[str],
    threshold: float,
    category_thresholds: dict[str, float],
    with_categories: bool = True,
    worst: int = WORST_ERRORS,
) -> dict[str, Any]:
    """The full report: binary metrics at ``threshold``, per-category metrics (when the data's
    categories are under the guard's taxonomy), and the worst errors (most confident mistakes)."""
    y = np.array([ex.label for ex in examples], dtype=int)
    p = np.asarray(p_unsafe, dtype=np.float64)
    report: dict[str, Any] = {"binary": binary_report(y, p, threshold)}
    by_input = {}
    for name, sel in (("prompt", [ex.response is None for ex in examples]),
                      ("response", [ex.response is not None for ex in examples])):
        mask = np.array(sel, dtype=bool)
        if mask.any():
            by_input[name] = binary_report(y[mask], p[mask], threshold)
    report["by_input"] = by_input
    if with_categories and codes:
        known = [i for i, ex in enumerate(examples) if ex.categories is not None]
        true = np.array([[1 if c in (examples[i].categories or ()) else 0 for c in codes] for i in known], dtype=int)
        report["categories"] = category_report(true.reshape(len(known), len(codes)),
                                               np.asarray(p_categories)[known].reshape(len(known), len(codes)),
                                               codes, category_thresholds)
        report["categories_evaluated_on"] = len(known)
    else:
        report["categories"] = {}
        report["categories_evaluated_on"] = 0
    errors = [i for i in range(len(y)) if (p[i] >= threshold) != bool(y[i])]
    errors.sort(key=lambda i: -abs(p[i] - y[i]))
    report["worst_errors"] = [
        {"key": ex.key, "label": "unsafe" if y[i] else "safe", "p_unsafe": round(float(p[i]), 4),
         "prompt": ex.prompt[:500], "response": None if ex.response is None else ex.response[:500]}
        for i in errors[:worst]
        for ex in (examples[i],)
    ]
    return report


def evaluate_folder(folder: str | Path, examples: Sequence[Example], *, with_categories: bool = True,
                    device: str = "cpu", guard=None) -> dict[str, Any]:
    """Load the guard in ``folder`` (or use the already ``guard``) and evaluate it on ``examples``."""
    from exports.guard.ml.modeling import load_guard

    guard = guard or load_guard(folder, device=device)
    m = guard.manifest
    p, pc = guard.predict([(ex.prompt, ex.response) for ex in examples])
    report = evaluate_predictions(examples, p, pc, codes=m.codes, threshold=m.threshold,
                                  category_thresholds=m.data["category_thresholds"], with_categories=with_categories)
    report["model"] = {"folder": str(Path(folder)), "recipe": m.data["recipe"], "taxonomy": m.data["taxonomy"]}
    return report
