"""Metric numbers checked against scikit-learn (and by hand) on literal inputs."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

from exports.guard.ml.calibrate import choose_threshold, fit_temperature
from exports.guard.ml.data import Example, category_targets, split_by_item
from exports.guard.ml.evaluate import binary_report, category_report, evaluate_predictions, expected_calibration_error

Y = np.array([0, 0, 1, 1, 1, 0, 1, 0, 0, 1])
P = np.array([0.1, 0.6, 0.7, 0.4, 0.9, 0.2, 0.55, 0.45, 0.05, 0.8])


def test_binary_report_matches_scikit_learn():
    # when
    r = binary_report(Y, P, 0.5)
    # then
    pred = (P >= 0.5).astype(int)
    assert r["precision"] == pytest.approx(precision_score(Y, pred))
    assert r["recall"] == pytest.approx(recall_score(Y, pred))
    assert r["f1"] == pytest.approx(f1_score(Y, pred))
    assert r["auroc"] == pytest.approx(roc_auc_score(Y, P))
    assert r["pr_auc"] == pytest.approx(average_precision_score(Y, P))
    assert r["confusion"] == {"tp": 4, "fp": 1, "tn": 4, "fn": 1}
    assert r["flagged_safe_share"] == pytest.approx(1 / 5)


def test_binary_report_with_one_class_has_no_auroc():
    r = binary_report(np.array([0, 0, 0]), np.array([0.1, 0.7, 0.2]), 0.5)
    assert r["auroc"] is None and r["pr_auc"] is None and r["confusion"]["fp"] == 1


def test_expected_calibration_error_by_hand():
    # bins of width 0.1: [0.0,0.1): 0.05 (y0) | [0.1,0.2): 0.1 (y0) | [0.2,0.3): 0.2 (y0)
    # [0.4,0.5): 0.4 (y1), 0.45 (y0) | [0.5,0.6): 0.55 (y1) | [0.6,0.7): 0.6 (y0)
    # [0.7,0.8): 0.7 (y1) | [0.8,0.9): 0.8 (y1) | [0.9,1]: 0.9 (y1)
    expected = (0.05 + 0.1 + 0.2 + 2 * abs(0.5 - 0.425) + 0.45 + 0.6 + 0.3 + 0.2 + 0.1) / 10
    assert expected_calibration_error(Y, P) == pytest.approx(expected)


def test_category_report_matches_scikit_learn():
    true = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    prob = np.array([[0.9, 0.2], [0.6, 0.7], [0.3, 0.9], [0.1, 0.1]])
    r = category_report(true, prob, ["S1", "S2"], {"S1": 0.5, "S2": 0.8})
    pred1, pred2 = (prob[:, 0] >= 0.5).astype(int), (prob[:, 1] >= 0.8).astype(int)
    assert r["S1"]["precision"] == pytest.approx(precision_score(true[:, 0], pred1))
    assert r["S1"]["recall"] == pytest.approx(recall_score(true[:, 0], pred1))
    assert r["S2"]["f1"] == pytest.approx(f1_score(true[:, 1], pred2))
    assert (r["S1"]["support"], r["S2"]["support"]) == (2, 2)


def test_evaluate_predictions_skips_unknown_categories_and_lists_worst_errors():
    examples = [Example("a", "p1", None, 1, ("S1",)), Example("b", "p2", "r", 0, ()), Example("c", "p3", None, 1, None)]
    r = evaluate_predictions(examples, np.array([0.9, 0.95, 0.2]), np.array([[0.9], [0.1], [0.8]]),
                             codes=["S1"], threshold=0.5, category_thresholds={"S1": 0.5})
    assert r["categories_evaluated_on"] == 2 and r["categories"]["S1"]["support"] == 1
    assert [e["key"] for e in r["worst_errors"]] == ["b", "c"]  # most confident mistake first
    assert set(r["by_input"]) == {"prompt", "response"}


def test_threshold_and_temperature():
    assert choose_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.35
    assert choose_threshold(np.array([0, 0]), np.array([0.1, 0.9])) == 0.5
    # overconfident logits on noisy labels: the fitted temperature softens them and lowers the NLL
    logits = np.array([6.0, -6.0, 6.0, -6.0, 6.0, -6.0])
    y = np.array([1, 0, 0, 1, 1, 0])
    t = fit_temperature(logits, y)

    def nll(t):
        z = logits / t
        return float(np.mean(np.logaddexp(0, z) - y * z))

    assert t > 1.0 and nll(t) < nll(1.0)


def test_split_is_by_item_and_seeded():
    examples = [Example(f"k{i // 2}", f"p{i}", None, i % 2, ()) for i in range(200)]
    train, val = split_by_item(examples, share=0.3, seed=7)
    assert {e.key for e in train}.isdisjoint({e.key for e in val})
    assert split_by_item(examples, share=0.3, seed=7) == (train, val)
    assert split_by_item(examples, share=0.3, seed=8) != (train, val)
    assert category_targets(("S2",), ["S1", "S2"]) == ([0.0, 1.0], 1.0)
