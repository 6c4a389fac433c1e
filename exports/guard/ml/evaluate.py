"""Metrics of a guard on labelled examples (numpy + scikit-learn; no torch at module level).

:func:`evaluate_predictions` is pure (predictions in, report out) so every number can be checked
against scikit-learn on literal inputs; :func:`evaluate_folder` loads a guard folder and predicts.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exports.guard.ml.data import Example
from exports.guard.ml.reliability import reliability_bins

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
    cat_true: np.ndarray, cat_prob: np.ndarray, codes: Sequence[str], thresholds: dict[str, float], *,
    mask: np.ndarray | None = None, cat_pred: np.ndarray | None = None, covered: Sequence[bool] | None = None,
    mapped_from: dict[str, list[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """P/R/F1/support per category code (``cat_true`` [N, K] 0/1, ``cat_prob`` [N, K]).

    ``mask`` [N, K] (default all true): category k is scored only on the rows where its label is
    known. ``cat_pred`` [N, K] 0/1: the decisions, when they are not ``cat_prob >= threshold``
    (through a crosswalk: "any mapped source category predicted"). ``covered`` [K]: False for a
    category the guard cannot predict (no head maps to it): its support is reported, its scores are
    None. ``mapped_from``: the guard codes behind each category, reported as is.
    """
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    out: dict[str, dict[str, Any]] = {}
    cat_true = np.asarray(cat_true)
    if len(cat_true) == 0:
        return out
    cat_prob = np.asarray(cat_prob, dtype=np.float64)
    mask = np.ones(cat_true.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    for k, code in enumerate(codes):
        rows = mask[:, k]
        yk = cat_true[rows, k].astype(int)
        entry: dict[str, Any] = {"n": int(rows.sum()), "support": int(yk.sum())}
        if mapped_from is not None:
            entry["mapped_from"] = list(mapped_from.get(code, []))
        if covered is not None and not covered[k]:
            out[code] = {**entry, "covered": False, "precision": None, "recall": None, "f1": None, "auroc": None,
                         "predicted": None, "threshold": None}
            continue
        if cat_pred is not None:
            pred = np.asarray(cat_pred)[rows, k].astype(int)
            t: float | None = None
        else:
            t = float(thresholds.get(code, 0.5))
            pred = (cat_prob[rows, k] >= t).astype(int)
        precision, recall, f1, _ = precision_recall_fscore_support(yk, pred, average="binary", pos_label=1, zero_division=0)
        both = len(np.unique(yk)) == 2
        out[code] = {**entry, "precision": float(precision), "recall": float(recall), "f1": float(f1),
                     "auroc": float(roc_auc_score(yk, cat_prob[rows, k])) if both else None,
                     "predicted": int(pred.sum()), "threshold": t}
    return out


def category_mask(examples: Sequence[Example], codes: Sequence[str]) -> np.ndarray:
    """[N, K] bool: is category k's label known for example i? (not when its categories are
    unknown, nor for a code listed in its ``unknown_categories``)."""
    return np.array([[ex.categories is not None and c not in ex.unknown_categories for c in codes] for ex in examples],
                    dtype=bool).reshape(len(examples), len(codes))


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
    category_predictions: np.ndarray | None = None,
    category_covered: Sequence[bool] | None = None,
    mapped_from: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The full report: binary metrics at ``threshold``, per-category metrics under ``codes`` (the
    data's categories; each scored on the examples where its label is known, see
    :func:`category_mask`), and the worst errors (most confident mistakes).

    ``p_categories`` [N, K] are in ``codes`` order: the guard's own heads, or its heads mapped
    through a crosswalk (then ``category_predictions``, ``category_covered`` and ``mapped_from``
    say what :func:`category_report` takes them for)."""
    y = np.array([ex.label for ex in examples], dtype=int)
    p = np.asarray(p_unsafe, dtype=np.float64)
    report: dict[str, Any] = {"binary": binary_report(y, p, threshold)}
    by_input = {}
    for name, sel in (("prompt", [ex.response is None for ex in examples]),
                      ("response", [ex.response is not None for ex in examples])):
        sel_mask = np.array(sel, dtype=bool)
        if sel_mask.any():
            by_input[name] = binary_report(y[sel_mask], p[sel_mask], threshold)
    report["by_input"] = by_input
    if with_categories and codes:
        mask = category_mask(examples, codes)
        known = [int(i) for i in np.flatnonzero(mask.any(axis=1))]
        true = np.array([[1 if c in (examples[i].categories or ()) else 0 for c in codes] for i in known], dtype=int)
        pred = None if category_predictions is None else np.asarray(category_predictions)[known]
        report["categories"] = category_report(true.reshape(len(known), len(codes)),
                                               np.asarray(p_categories)[known].reshape(len(known), len(codes)),
                                               codes, category_thresholds, mask=mask[known], cat_pred=pred,
                                               covered=category_covered, mapped_from=mapped_from)
        report["categories_evaluated_on"] = int(len(known))
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
    report["calibration"] = reliability_bins(y, p)  # the reliability diagram of the report page
    return report


@dataclass(frozen=True)
class CategoryMap:
    """A crosswalk from the guard's category codes onto the data's (built by the Django side:
    ``exports.guard.sources.category_map_for``): every guard code -> the data codes it maps to."""

    target_codes: list[str]
    mapping: dict[str, list[str]]
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def map_guard_categories(pc: np.ndarray, guard_codes: Sequence[str], guard_thresholds: dict[str, float],
                         category_map: CategoryMap) -> tuple[np.ndarray, np.ndarray, list[bool], dict[str, list[str]]]:
    """The guard's category probabilities [N, K_guard] -> (P [N, K_data] = max over the mapped
    guard categories, decisions [N, K_data] = any mapped guard category at or above its own
    threshold, covered [K_data], data code -> guard codes)."""
    from annotation.crosswalk import map_scores, sources_of

    pc = np.asarray(pc, dtype=np.float64).reshape(-1, len(guard_codes))
    decisions = (pc >= np.array([float(guard_thresholds.get(c, 0.5)) for c in guard_codes])).astype(float)
    probs, covered = map_scores(pc.tolist(), guard_codes, category_map.mapping, category_map.target_codes)
    preds, _ = map_scores(decisions.tolist(), guard_codes, category_map.mapping, category_map.target_codes)
    k = len(category_map.target_codes)
    inv = sources_of({c: category_map.mapping.get(c, []) for c in guard_codes}, category_map.target_codes)
    return (np.array(probs, dtype=np.float64).reshape(-1, k), np.array(preds, dtype=int).reshape(-1, k), covered, inv)


def evaluate_folder(folder: str | Path, examples: Sequence[Example], *, with_categories: bool = True,
                    device: str = "cpu", guard=None, category_map: CategoryMap | None = None) -> dict[str, Any]:
    """Load the guard in ``folder`` (or use the already ``guard``) and evaluate it on ``examples``.
    With ``category_map`` the data's categories are another taxonomy's: the guard's category
    probabilities are mapped onto them first (see :func:`map_guard_categories`)."""
    from exports.guard.ml.modeling import load_guard

    guard = guard or load_guard(folder, device=device)
    m = guard.manifest
    p, pc = guard.predict([(ex.prompt, ex.response) for ex in examples])
    if category_map is None:
        report = evaluate_predictions(examples, p, pc, codes=m.codes, threshold=m.threshold,
                                      category_thresholds=m.data["category_thresholds"], with_categories=with_categories)
    else:
        probs, preds, covered, inv = map_guard_categories(pc, m.codes, m.data["category_thresholds"], category_map)
        report = evaluate_predictions(examples, p, probs, codes=category_map.target_codes, threshold=m.threshold,
                                      category_thresholds={}, with_categories=with_categories,
                                      category_predictions=preds, category_covered=covered, mapped_from=inv)
        report["crosswalk"] = {"description": category_map.description, **category_map.details}
    report["model"] = {"folder": str(Path(folder)), "recipe": m.data["recipe"], "taxonomy": m.data["taxonomy"]}
    return report
