"""annotation.metrics.discretion on small hand-built cases whose row classes, DA, PS (with n_ij),
w* order and DD are worked out by hand below, and w* against the paper's Adam fit re-run in torch."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit

from annotation.metrics.discretion import (
    CONFLICT,
    CONSENSUS,
    INDIFFERENCE,
    class_shares,
    conflict_capture,
    discretion,
    discretion_arbitrariness,
    discretion_discrepancy,
    principle_preference,
    principle_priority,
    principle_supremacy,
    priority_ranks,
    row_classes,
)

N = math.nan

# Case A: three principles, seven rows.
#   r0 [+1 +1  .]  Consensus, c = +1
#   r1 [-1  .  .]  Consensus, c = -1
#   r2 [ .  .  .]  Indifference
#   r3 [+1 -1  .]  Conflict 0 vs 1
#   r4 [+1  . -1]  Conflict 0 vs 2
#   r5 [ . +1 -1]  Conflict 1 vs 2
#   r6 [-1 +1  .]  Conflict 0 vs 1
CASE_A = [[1, 1, N], [-1, N, N], [N, N, N], [1, -1, N], [1, N, -1], [N, 1, -1], [-1, 1, N]]
HUMAN_A = [1, 1, 1, 1, 1, 1, 1]  # HH-RLHF style: the human always prefers response 1
OTHER_A = [1, -1, N, -1, -1, -1, 1]


def test_principle_preference_from_probabilities():
    # sign(A - B); a tie is NaN; NA above both is NaN; NA above only one keeps the sign.
    p = principle_preference([0.7, 0.2, 0.4, 0.3, 0.5], [0.2, 0.7, 0.4, 0.2, 0.1], [0.1, 0.1, 0.2, 0.5, 0.3])
    assert np.array_equal(p, [1, -1, N, N, 1], equal_nan=True)


def test_row_classes_by_hand():
    classes, consensus = row_classes(CASE_A)
    assert classes.tolist() == [CONSENSUS, CONSENSUS, INDIFFERENCE, CONFLICT, CONFLICT, CONFLICT, CONFLICT]
    assert np.array_equal(consensus, [1, -1, N, N, N, N, N], equal_nan=True)
    assert class_shares(CASE_A) == pytest.approx({CONSENSUS: 2 / 7, CONFLICT: 4 / 7, INDIFFERENCE: 1 / 7})
    # 0 is a tie: read as NaN, so [0, +1] is Consensus and [0, 0] Indifference.
    classes, _ = row_classes([[0, 1], [0, 0]])
    assert classes.tolist() == [CONSENSUS, INDIFFERENCE]


def test_discretion_arbitrariness_by_hand():
    # Human: r0 agrees with c = +1, r1 goes against c = -1: DA = 1/2.
    assert discretion_arbitrariness(CASE_A, HUMAN_A) == 0.5
    # Other: r0 (+1 vs +1) and r1 (-1 vs -1) agree: DA = 0.
    assert discretion_arbitrariness(CASE_A, OTHER_A) == 0.0
    # Rows where the annotator has no valid preference (NaN or 0) do not count: only r1 is left.
    assert discretion_arbitrariness(CASE_A, [0, 1, 1, 1, 1, 1, 1]) == 1.0
    assert math.isnan(discretion_arbitrariness(CASE_A, [N, 0, 1, 1, 1, 1, 1]))


def test_principle_supremacy_and_infinite_priorities_by_hand():
    ps, n = principle_supremacy(CASE_A, HUMAN_A)
    # Pair (0,1): r3 and r6, n = 2; p_0 * a > 0 on r3 only: PS(0,1) = 1/2, PS(1,0) = 1/2.
    # Pair (0,2): r4, p_0 = +1 agrees with a: PS(0,2) = 1, PS(2,0) = 0. Pair (1,2): r5: PS(1,2) = 1, PS(2,1) = 0.
    assert np.array_equal(ps, [[N, 0.5, 1], [0.5, N, 1], [0, 0, N]], equal_nan=True)
    assert n.tolist() == [[0, 2, 1], [2, 0, 1], [1, 1, 0]]
    # Principle 2 has PS 0 or NaN everywhere: -inf. Principles 0 and 1 tie (1/2 over 2 rows), so the
    # gradient at the start (all zeros) is 0 and the fit stops at once: w = [0, 0, -inf].
    assert principle_priority(ps, n).tolist() == [0.0, 0.0, -math.inf]

    ps, n = principle_supremacy(CASE_A, OTHER_A)
    # (0,1): r3 a = -1 against p_0 = +1, r6 a = +1 against p_0 = -1: PS(0,1) = 0, PS(1,0) = 1.
    # (0,2): r4 a = -1: PS(0,2) = 0, PS(2,0) = 1. (1,2): r5 a = -1: PS(1,2) = 0, PS(2,1) = 1.
    assert np.array_equal(ps, [[N, 0, 0], [1, N, 0], [1, 1, N]], equal_nan=True)
    # Principle 0 always loses (-inf), principle 2 always wins (+inf), principle 1 alone is fitted
    # (no finite cell with weight): it stays at 0.
    assert principle_priority(ps, n).tolist() == [-math.inf, 0.0, math.inf]

    # A principle never in a conflict (a NaN row) matches both tests; as in the paper's code the
    # -inf assignment comes last.
    ps, n = principle_supremacy([[1, -1, N], [-1, 1, N]], [1, 1])
    assert principle_priority(ps, n)[2] == -math.inf


def test_discrepancy_by_hand_case_a():
    report = discretion(CASE_A, {"human": HUMAN_A, "other": OTHER_A}, n_boot=0)
    # Human w = [0, 0, -inf]: ranks [1.5, 1.5, 3]. Other w = [-inf, 0, +inf]: ranks [3, 2, 1].
    assert priority_ranks(report.w["human"]).tolist() == [1.5, 1.5, 3.0]
    assert priority_ranks(report.w["other"]).tolist() == [3.0, 2.0, 1.0]
    # Pairs: (0,1) tied for the human only; (0,2) and (1,2) discordant. tau_b = (0 - 2) /
    # sqrt((0 + 2 + 1) * (0 + 2 + 0)) = -2 / sqrt(6); DD = (1 + 2 / sqrt(6)) / 2 = 0.9082.
    expected = (1 + 2 / math.sqrt(6)) / 2
    assert report.dd[0, 1] == pytest.approx(expected) and report.dd[1, 0] == pytest.approx(expected)
    assert report.dd[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert report.classes == {CONSENSUS: 2, CONFLICT: 4, INDIFFERENCE: 1}
    assert report.da == {"human": 0.5, "other": 0.0}


# Case B: finite priorities that need the fit.
#   3 rows (+1, -1, .) and 1 row (-1, +1, .): conflicts 0 vs 1, n = 4
#   3 rows (., +1, -1) and 1 row (., -1, +1): conflicts 1 vs 2, n = 4
#   1 row  (+1, ., -1) and 1 row (-1, ., +1): conflicts 0 vs 2, n = 2
#   then Consensus rows (+1, ., .) and (-1, -1, .), and one Indifference row.
CASE_B = (
    [[1, -1, N]] * 3 + [[-1, 1, N]] + [[N, 1, -1]] * 3 + [[N, -1, 1]] + [[1, N, -1], [-1, N, 1]]
    + [[1, N, N], [-1, -1, N], [N, N, N]]
)


def test_priority_fit_and_discrepancy_by_hand_case_b():
    human = np.ones(len(CASE_B))
    mixed = human.copy()
    mixed[0:4] = -1  # against the human on the 0-vs-1 conflicts only
    report = discretion(CASE_B, {"human": human, "reversed": -human, "copy": human.copy(), "mixed": mixed}, n_boot=0)
    # Human PS: (0,1) 3/4, (1,2) 3/4, (0,2) 1/2 (and the complements below the diagonal).
    assert np.array_equal(report.ps["human"], [[N, 0.75, 0.5], [0.25, N, 0.75], [0.5, 0.25, N]], equal_nan=True)
    assert report.n["human"].tolist() == [[0, 4, 2], [4, 0, 4], [2, 4, 0]]
    # The problem is symmetric under (0 <-> 2, w -> -w), so w = (d, 0, -d); setting the gradient in
    # w_0 to zero: 4 (sigmoid(d) - 3/4) + 2 (sigmoid(2d) - 1/2) = 0, solved here by bisection.
    d = brentq(lambda x: 4 * expit(x) + 2 * expit(2 * x) - 4, 0, 10)
    assert report.w["human"] == pytest.approx([d, 0, -d], abs=1e-5)
    assert priority_ranks(report.w["human"]).tolist() == [1.0, 2.0, 3.0]
    # Mixed: PS(0,1) = 1/4, PS(1,2) = 3/4, PS(0,2) = 1/2 fit exactly: w_1 - w_0 = w_1 - w_2 = ln 3, w_0 = w_2.
    w = report.w["mixed"]
    assert w[1] - w[0] == pytest.approx(math.log(3), abs=1e-5)
    assert w[0] == w[2]
    # DD: the reversed annotator ranks [3, 2, 1]: tau = -1, DD = 1; the copy: DD = 0.
    # Mixed ranks [2.5, 1, 2.5] against [1, 2, 3]: (0,1) discordant, (0,2) tied for mixed only,
    # (1,2) concordant: tau_b = 0, DD = 1/2.
    names = report.annotators
    human_i = names.index("human")
    assert report.dd[human_i, names.index("reversed")] == pytest.approx(1.0)
    assert report.dd[human_i, names.index("copy")] == pytest.approx(0.0, abs=1e-12)
    assert report.dd[human_i, names.index("mixed")] == pytest.approx(0.5)
    assert report.dd_reference()["mixed"]["value"] == pytest.approx(0.5)
    # DA: Consensus rows (+1,.,.) with the human agreeing and (-1,-1,.) against: 1/2.
    assert report.da["human"] == 0.5 and report.da["reversed"] == 0.5


def test_bootstrap_mean_and_sd():
    human = np.ones(len(CASE_B))
    first = discretion(CASE_B, {"human": human, "copy": human.copy(), "reversed": -human}, n_boot=40, seed=3)
    again = discretion(CASE_B, {"human": human, "copy": human.copy(), "reversed": -human}, n_boot=40, seed=3)
    assert first.da_boot == again.da_boot and np.array_equal(first.dd_boot_mean, again.dd_boot_mean, equal_nan=True)
    # The copy fits the same w* on every resample: DD 0 with SD 0.
    assert first.dd_boot_mean[0, 1] == pytest.approx(0.0, abs=1e-12) and first.dd_boot_sd[0, 1] == pytest.approx(0.0, abs=1e-12)
    # The reversed annotator is the mirror image on every resample where tau is defined: DD 1.
    assert first.dd_boot_mean[0, 2] == pytest.approx(1.0, abs=1e-9)
    # DA over resamples of the two Consensus rows: each resample is 0, 1/2 or 1 with probabilities
    # 1/4, 1/2, 1/4, so the mean is near 1/2 and the SD near sqrt(1/8) = 0.354.
    mean, sd = first.da_boot["human"]
    assert 0.3 < mean < 0.7 and 0.2 < sd < 0.5
    # Every annotator always right on the Consensus rows: 0 with SD 0.
    agreeing = human.copy()
    agreeing[CASE_B.index([-1, -1, N])] = -1
    report = discretion(CASE_B, {"a": agreeing}, n_boot=20, seed=0)
    assert report.da_boot["a"] == (0.0, 0.0)
    data = report.as_dict()
    assert data["annotator"]["a"]["da"] == 0.0 and len(data["annotator"]["a"]["ps"]) == 3


def test_priority_fit_matches_the_papers_torch_adam_loop():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead (restored at the end)
    try:
        _compare_with_torch(torch)
    finally:
        torch.set_num_threads(threads)


def _compare_with_torch(torch):

    def paper_fit(n, ps, iters=30000):
        # The paper's loop (REFERENCE.md §2), in float64 for an exact comparison.
        games = torch.tensor(n, dtype=torch.float64)
        y = torch.tensor(ps, dtype=torch.float64)
        w = torch.zeros(n.shape[:-1], dtype=torch.float64, requires_grad=True)
        winners = ((y == 1) | y.isnan()).all(dim=-1)
        losers = ((y == 0) | y.isnan()).all(dim=-1)
        w.data[winners] = torch.inf
        w.data[losers] = -torch.inf
        fitted = ~(winners | losers)
        target = y.flatten(start_dim=-2).nan_to_num(nan=0.5)
        weight = games.flatten(start_dim=-2).nan_to_num(nan=0)
        opt = torch.optim.Adam([w], lr=0.1)
        for _ in range(iters):
            opt.zero_grad()
            pred = (w.unsqueeze(-1) - w.unsqueeze(-2)).flatten(start_dim=-2)
            ok = pred.isfinite()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(pred[ok], target[ok], weight=weight[ok])
            loss.backward()
            w.grad[~fitted] = 0
            if w.grad.abs().max() < 1e-7:
                break
            opt.step()
        return w.detach().numpy()

    rng = np.random.default_rng(0)
    rows, k = 120, 6
    p = rng.choice([1.0, -1.0, N], size=(rows, k), p=[0.3, 0.2, 0.5])
    a = np.where(rng.random(rows) < 0.1, N, np.sign(np.nan_to_num(p[:, :2]).sum(axis=1) + rng.normal(size=rows)))
    a[0] = N
    ps, n = principle_supremacy(p, a)
    assert principle_priority(ps, n) == pytest.approx(paper_fit(n, ps), abs=1e-9)
    # With a principle that always wins and one that always loses.
    ps[0, 1:] = 1
    ps[1:, 0] = 0
    ps[5, :5] = 0
    ps[:5, 5] = 1
    got = principle_priority(ps, n)
    assert got[0] == math.inf and got[5] == -math.inf
    assert got == pytest.approx(paper_fit(n, ps), abs=1e-9)
    # Batched fits (the bootstrap) give each fit's own result.
    batch = principle_priority(np.stack([ps, principle_supremacy(p, a)[0]]), np.stack([n, n]))
    assert batch[0] == pytest.approx(got, abs=1e-12)


def test_discrepancy_is_kendall_tau_b_distance():
    # Ranks [1, 2, 3, 4] vs [2, 1, 3, 4]: one discordant pair of six: tau = (5 - 1) / 6, DD = 1/6.
    assert discretion_discrepancy([4, 3, 2, 1], [3, 4, 2, 1]) == pytest.approx(1 / 6)
    assert math.isnan(discretion_discrepancy([1, 1, 1], [3, 2, 1]))  # all tied: undefined


def test_conflict_capture_by_hand():
    # Rows 3-6 of case A are Conflict rows. Ann marks rows 3, 4 and 0: recall 2/4 (she saw all four),
    # precision 2/3, marked 3 of 7.
    marks = [("ann", r, r in (0, 3, 4)) for r in range(7)] + [("bob", 5, True), ("bob", 1, False)]
    got = {c.annotator: c for c in conflict_capture(CASE_A, marks)}
    assert (got["ann"].recall, got["ann"].precision, got["ann"].marked_share) == (0.5, pytest.approx(2 / 3), pytest.approx(3 / 7))
    assert (got["bob"].n_rows, got["bob"].n_conflict_rows, got["bob"].recall, got["bob"].precision) == (2, 1, 1.0, 1.0)
