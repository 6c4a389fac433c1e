"""annotation.metrics.agreement on literal inputs, checked against independent computations:
hand-worked values, the krippendorff package's own examples, scikit-learn's cohen_kappa_score,
scipy's kendalltau and friedmanchisquare, a plain bootstrap, and HateCheck's annotation file."""
from __future__ import annotations

import csv
import math
from collections import Counter

import krippendorff
import numpy as np
import pytest
from scipy.stats import friedmanchisquare, kendalltau
from sklearn.metrics import cohen_kappa_score

from annotation.metrics.agreement import (
    SAFETY_LABELS,
    LabelTable,
    RankingTable,
    _alpha_from_coincidences,
    _coincidence_columns,
    agreement_matrix,
    annotator_agreement,
    category_agreement,
    choice_agreement,
    consensus_rows,
    fleiss_kappa,
    fleiss_kappa_counts,
    kendall_tau_matrix,
    kendall_w,
    krippendorff_alpha,
    label_agreement,
    majority,
    percent_agreement,
    ranking_agreement,
    resample_weights,
)
from tests.conftest import shared_data

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories.
WIKI_COUNTS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]

# The krippendorff package's docstring examples (3 coders x 15 units; 4 coders x 12 units).
NAN = math.nan
KRIPP_NOMINAL = [
    [NAN, NAN, NAN, NAN, NAN, 3, 4, 1, 2, 1, 1, 3, 3, NAN, 3],
    [1, NAN, 2, 1, 3, 3, 4, 3, NAN, NAN, NAN, NAN, NAN, NAN, NAN],
    [NAN, NAN, 2, 1, 3, 4, 4, NAN, 2, 1, 1, 3, 3, NAN, 4],
]
KRIPP_ORDINAL = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


def _rows_from_matrix(matrix):
    return [(f"coder{r}", u, int(v)) for r, line in enumerate(matrix) for u, v in enumerate(line) if not math.isnan(v)]


def _rows_from_counts(counts, categories):
    rows = []
    for item, line in enumerate(counts):
        labels = [c for c, n in zip(categories, line) for _ in range(n)]
        rows += [(f"rater{k}", item, label) for k, label in enumerate(labels)]
    return rows


def test_fleiss_kappa_wikipedia_worked_example():
    # By hand: P_i = (sum_j n_ij^2 - 14) / (14 * 13); the ten P_i sum to 688 / 182 = 3.780, so
    # P_bar = 0.37802. Column totals 20, 28, 39, 21, 32 of 140: P_e = (20^2 + 28^2 + 39^2 + 21^2 +
    # 32^2) / 140^2 = 4170 / 19600 = 0.21276. kappa = (0.37802 - 0.21276) / (1 - 0.21276) = 0.210.
    p_bar = 688 / 182 / 10
    p_e = 4170 / 19600
    expected = (p_bar - p_e) / (1 - p_e)
    assert round(expected, 3) == 0.210
    assert fleiss_kappa_counts(WIKI_COUNTS) == pytest.approx(expected, abs=1e-12)
    table = LabelTable.from_rows(_rows_from_counts(WIKI_COUNTS, "ABCDE"), list("ABCDE"))
    assert fleiss_kappa(table) == pytest.approx(expected, abs=1e-12)
    assert percent_agreement(table) == pytest.approx(p_bar, abs=1e-12)
    result = label_agreement(table, n_boot=200, seed=3)
    assert result["fleiss_kappa"].value == pytest.approx(expected, abs=1e-12)
    assert result["fleiss_kappa"].n_items == 10
    assert result["fleiss_kappa"].low < expected < result["fleiss_kappa"].high


def test_krippendorff_alpha_package_examples():
    nominal = LabelTable.from_rows(_rows_from_matrix(KRIPP_NOMINAL))
    assert krippendorff_alpha(nominal) == pytest.approx(0.691358, abs=1e-6)
    assert label_agreement(nominal, n_boot=0)["alpha_nominal"].value == pytest.approx(0.691358, abs=1e-6)
    ordinal = LabelTable.from_rows(_rows_from_matrix(KRIPP_ORDINAL), [1, 2, 3, 4, 5])
    got = label_agreement(ordinal, ordinal=True, n_boot=0)
    assert round(got["alpha_ordinal"].value, 3) == 0.815
    assert round(got["alpha_nominal"].value, 3) == 0.743  # the package's nominal figure on the same data
    # The bootstrap's own coincidence formula gives the package's value on the full data.
    for table, level in [(nominal, "nominal"), (ordinal, "ordinal"), (ordinal, "nominal")]:
        summed = _coincidence_columns(table.value_counts()).sum(axis=0)[None, :]
        assert _alpha_from_coincidences(summed, level == "ordinal")[0] == pytest.approx(
            krippendorff.alpha(value_counts=table.value_counts(), level_of_measurement=level), abs=1e-12
        )


def test_percent_agreement_and_unanimity_by_hand():
    rows = [
        ("a", 1, "safe"), ("b", 1, "safe"), ("c", 1, "safe"),  # P_1 = 1
        ("a", 2, "safe"), ("b", 2, "safe"), ("c", 2, "unsafe"),  # P_2 = (2^2 + 1^2 - 3) / (3 * 2) = 1/3
        ("a", 3, "unsafe"),  # one rater: not counted
    ]
    result = label_agreement(LabelTable.from_rows(rows, SAFETY_LABELS), n_boot=0)
    assert result["percent_agreement"].value == pytest.approx((1 + 1 / 3) / 2)
    assert result["unanimous"].value == pytest.approx(0.5)
    assert result["percent_agreement"].n_items == 2
    assert math.isnan(result["percent_agreement"].low)  # no resamples asked for


def test_bootstrap_is_a_plain_item_resample():
    rng = np.random.default_rng(11)
    rows = []
    for item in range(40):
        truth = rng.integers(0, 3)
        for rater in rng.choice(6, size=rng.integers(2, 5), replace=False):
            value = truth if rng.random() < 0.6 else rng.integers(0, 3)
            rows.append((f"r{rater}", item, SAFETY_LABELS[value]))
    table = LabelTable.from_rows(rows, SAFETY_LABELS)
    result = label_agreement(table, n_boot=50, seed=5)
    again = label_agreement(table, n_boot=50, seed=5)
    assert result == again  # seeded
    # The same resamples drawn directly, and the statistics recomputed on the resampled items.
    counts = table.value_counts()
    idx = np.random.default_rng(5).integers(0, len(table.items), size=(50, len(table.items)))
    weights = np.vstack(list(resample_weights(len(table.items), 50, 5)))
    assert weights.sum(axis=1).tolist() == [len(table.items)] * 50
    fleiss = [fleiss_kappa_counts(counts[i]) for i in idx]
    alpha = [krippendorff.alpha(value_counts=counts[i], level_of_measurement="nominal") for i in idx]
    assert result["fleiss_kappa"].low == pytest.approx(np.percentile(fleiss, 2.5), abs=1e-12)
    assert result["fleiss_kappa"].high == pytest.approx(np.percentile(fleiss, 97.5), abs=1e-12)
    assert result["alpha_nominal"].low == pytest.approx(np.percentile(alpha, 2.5), abs=1e-12)
    assert result["alpha_nominal"].high == pytest.approx(np.percentile(alpha, 97.5), abs=1e-12)


def test_cohen_kappa_matrix_matches_scikit_learn_for_every_pair():
    rng = np.random.default_rng(7)
    raters = ["u:1", "u:2", "u:3", "juror:smollm2", "guard:4", "jury"]
    rows = []
    for item in range(60):
        truth = rng.integers(0, 3)
        for rater in raters:
            if rng.random() < 0.7:
                value = truth if rng.random() < 0.65 else rng.integers(0, 3)
                rows.append((rater, item, SAFETY_LABELS[value]))
    table = LabelTable.from_rows(rows, SAFETY_LABELS, raters=[*raters, "u:nobody"])
    matrix = agreement_matrix(table)
    assert matrix.raters == [*raters, "u:nobody"]
    given = {(r, i): v for r, i, v in rows}
    for a, ra in enumerate(raters):
        for b, rb in enumerate(raters):
            if a == b:
                continue
            shared = [i for i in range(60) if (ra, i) in given and (rb, i) in given]
            x = [given[(ra, i)] for i in shared]
            y = [given[(rb, i)] for i in shared]
            assert matrix.n_shared[a, b] == len(shared)
            assert matrix.values["kappa"][a, b] == pytest.approx(cohen_kappa_score(x, y), abs=1e-12)
            assert matrix.values["percent_agreement"][a, b] == pytest.approx(np.mean(np.array(x) == np.array(y)))
    nobody = matrix.raters.index("u:nobody")
    assert matrix.n_shared[nobody].sum() == 0 and np.isnan(matrix.values["kappa"][nobody, 0])
    assert len(matrix.rows()) == 7 * 6


def test_cohen_kappa_by_hand():
    # a: s s u u; b: s u u u. p_o = 3/4; p_e = (2/4)(1/4) + (2/4)(3/4) = 1/2; kappa = (3/4 - 1/2) / (1/2) = 1/2.
    rows = [("a", i, v) for i, v in enumerate("ssuu")] + [("b", i, v) for i, v in enumerate("suuu")]
    matrix = agreement_matrix(LabelTable.from_rows(rows))
    assert matrix.values["kappa"][0, 1] == pytest.approx(0.5)
    assert matrix.values["kappa"][1, 0] == pytest.approx(0.5)
    assert matrix.n_shared[0, 1] == 4


def test_consensus_and_leave_one_out_by_hand():
    rows = [
        ("A", 1, "safe"), ("B", 1, "safe"), ("C", 1, "unsafe"),
        ("A", 2, "unsafe"), ("B", 2, "safe"), ("C", 2, "safe"),
        ("A", 3, "safe"), ("B", 3, "safe"),
    ]
    table = LabelTable.from_rows(rows, SAFETY_LABELS)
    assert majority(table) == {1: "safe", 2: "safe", 3: "safe"}
    assert majority(table, exclude=["B"]) == {3: "safe"}  # items 1 and 2 tie between A and C
    stats = {s.rater: s for s in annotator_agreement(table, gold={1: "unsafe", 2: "safe"})}
    # A: item 1 others {safe, unsafe} tie -> skipped; item 2 others {safe, safe} -> disagrees;
    # item 3 other {safe} -> agrees: 1 of 2.
    assert (stats["A"].loo_agreement, stats["A"].loo_items) == (0.5, 2)
    # B: items 1 and 2 tie among the others; item 3 agrees: 1 of 1.
    assert (stats["B"].loo_agreement, stats["B"].loo_items) == (1.0, 1)
    # C: item 1 others {safe, safe} -> disagrees; item 2 others {unsafe, safe} tie: 0 of 1.
    assert (stats["C"].loo_agreement, stats["C"].loo_items) == (0.0, 1)
    # Project: 6 safe, 2 unsafe of 8. A: 2/3 safe, 1/3 unsafe: TVD = (1/12 + 1/12) / 2 = 1/12.
    assert stats["A"].distribution == pytest.approx({"safe": 2 / 3, "needs_caution": 0.0, "unsafe": 1 / 3})
    assert stats["A"].distance == pytest.approx(1 / 12)
    # Gold: item 1 is unsafe (only C right), item 2 safe (B and C right).
    assert (stats["A"].gold_accuracy, stats["A"].gold_items) == (0.0, 2)
    assert stats["C"].gold_accuracy == 1.0 and stats["B"].gold_accuracy == 0.5
    # The consensus as one more rater of the matrix: it agrees with B on every item.
    matrix = agreement_matrix(LabelTable.from_rows(rows + consensus_rows(table), SAFETY_LABELS))
    b, consensus = matrix.raters.index("B"), matrix.raters.index("consensus")
    assert matrix.values["percent_agreement"][b, consensus] == 1.0 and matrix.n_shared[b, consensus] == 3


def test_category_agreement_present_or_absent_by_hand():
    rows = [
        ("a", 1, ["S1"]), ("b", 1, ["S1", "S2"]), ("c", 1, []),
        ("a", 2, []), ("b", 2, []), ("c", 2, []),
    ]
    result = category_agreement(rows, ["S1", "S2", "S3"], n_boot=0)
    assert list(result) == ["S1", "S2", "S3"]
    # S1: item 1 has 2 present, 1 absent: P = (4 + 1 - 3) / 6 = 1/3; item 2 all absent: P = 1.
    assert result["S1"]["percent_agreement"].value == pytest.approx((1 / 3 + 1) / 2)
    assert result["S1"]["present_share"].value == pytest.approx(2 / 6)
    # S2: item 1 has 1 present, 2 absent: P = 1/3 as well; present 1 of 6.
    assert result["S2"]["percent_agreement"].value == pytest.approx((1 / 3 + 1) / 2)
    assert result["S2"]["present_share"].value == pytest.approx(1 / 6)
    # Alpha (nominal, binary) from the coincidences worked by hand for S1: item 1 gives o_PP = 2*1/2 = 1,
    # o_PA = o_AP = 2*1/2 = 1; item 2 gives o_AA = 3*2/2 = 3. n_P = 2, n_A = 4, n = 6.
    # alpha = 1 - (n - 1) * (o_PA + o_AP) / (2 * n_P * n_A) = 1 - 5 * 2 / 16 = 0.375.
    assert result["S1"]["alpha_nominal"].value == pytest.approx(0.375)
    assert math.isnan(result["S3"]["alpha_nominal"].value)  # never marked: undefined
    assert result["S3"]["percent_agreement"].value == 1.0


def test_category_bootstrap_is_a_plain_item_resample():
    rng = np.random.default_rng(8)
    rows = []
    for item in range(30):
        for rater in rng.choice(5, size=rng.integers(2, 5), replace=False):
            rows.append((f"r{rater}", item, [c for c in ("S1", "S2") if rng.random() < (0.5 if c == "S1" else 0.2)]))
    result = category_agreement(rows, ["S1", "S2"], n_boot=40, seed=9)
    idx = np.random.default_rng(9).integers(0, 30, size=(40, 30))
    for code in ("S1", "S2"):
        # Present / absent counts per item, built directly from the rows.
        counts = np.zeros((30, 2))
        for _, item, codes in rows:
            counts[item, int(code in codes)] += 1
        assert result[code]["alpha_nominal"].value == pytest.approx(
            krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"), abs=1e-12)
        assert result[code]["fleiss_kappa"].value == pytest.approx(fleiss_kappa_counts(counts), abs=1e-12)
        fleiss = [fleiss_kappa_counts(counts[i]) for i in idx]
        alpha = [krippendorff.alpha(value_counts=counts[i], level_of_measurement="nominal") for i in idx]
        share = [counts[i, 1].sum() / counts[i].sum() for i in idx]
        for name, values in (("fleiss_kappa", fleiss), ("alpha_nominal", alpha), ("present_share", share)):
            assert result[code][name].low == pytest.approx(np.percentile(values, 2.5), abs=1e-12)
            assert result[code][name].high == pytest.approx(np.percentile(values, 97.5), abs=1e-12)


def test_choice_agreement_by_hand():
    rows = [
        ("a", "p1", "a"), ("b", "p1", "a"),
        ("a", "p2", "b"), ("b", "p2", "tie"),
        ("a", "p3", "b"), ("b", "p3", "b"),
    ]
    result = choice_agreement(rows, n_boot=0)
    assert result["percent_agreement"].value == pytest.approx(2 / 3)
    # Coincidences: a-a 2, b-b 2, b-tie 1, tie-b 1 (n = 6; n_a = 2, n_b = 3, n_tie = 1).
    # D_o = 2 / 6; D_e = (6^2 - (2^2 + 3^2 + 1^2)) / (6 * 5) = 22 / 30; alpha = 1 - (2/6) / (22/30).
    assert result["alpha_nominal"].value == pytest.approx(1 - (2 / 6) / (22 / 30))


# --- Rankings ---


def test_kendall_tau_by_hand_and_against_scipy():
    # A: 1 > 2 > 3; B: 2 > 1 > 3. Pairs: (1,2) discordant, (1,3) and (2,3) concordant: tau = 1/3.
    rows = [("A", "x", [[1], [2], [3]]), ("B", "x", [2, 1, 3])]
    matrix = kendall_tau_matrix(RankingTable.from_rows(rows))
    assert matrix.values["kendall_tau_b"][0, 1] == pytest.approx(1 / 3)
    rng = np.random.default_rng(4)
    rows = []
    for item in range(25):
        responses = [item * 10 + k for k in range(5)]
        for rater in ["r1", "r2", "r3", "r4"]:
            if rng.random() < 0.8:
                order = [int(x) for x in rng.permutation(responses)]
                groups: list[list[int]] = []
                for response in order:
                    if groups and rng.random() < 0.3:
                        groups[-1].append(response)
                    else:
                        groups.append([response])
                rows.append((rater, item, groups))
    table = RankingTable.from_rows(rows)
    matrix = kendall_tau_matrix(table)

    def ranks_of(groups):
        out, pos = {}, 1
        for g in groups:
            for r in g:
                out[r] = pos + (len(g) - 1) / 2
            pos += len(g)
        return out

    given = {(r, i): ranks_of(g) for r, i, g in rows}
    all_taus = []
    for a, ra in enumerate(table.raters):
        for b, rb in enumerate(table.raters):
            if a >= b:
                continue
            taus = []
            for item in range(25):
                if (ra, item) in given and (rb, item) in given:
                    x, y = given[(ra, item)], given[(rb, item)]
                    keys = sorted(x)
                    tau = kendalltau([x[k] for k in keys], [y[k] for k in keys], variant="b").statistic
                    if np.isfinite(tau):
                        taus.append(tau)
            all_taus += taus
            assert matrix.n_shared[a, b] == len(taus)
            assert matrix.values["kendall_tau_b"][a, b] == pytest.approx(np.mean(taus), abs=1e-12)
    result = ranking_agreement(table, n_boot=30, seed=1)
    assert result["kendall_tau_b"].value == pytest.approx(np.mean(all_taus), abs=1e-12)


def test_kendall_w_by_hand_and_against_friedman():
    # Three raters who rank three responses the same way: W = 1. Reversed by one rater:
    # rank sums 1+1+3, 2+2+2, 3+3+1 = 5, 6, 7; S = 1 + 0 + 1 = 2; W = 12 * 2 / (9 * 24) = 1/9.
    same = [(r, "x", [1, 2, 3]) for r in "abc"]
    assert kendall_w(RankingTable.from_rows(same)) == pytest.approx(1.0)
    one_reversed = [("a", "x", [1, 2, 3]), ("b", "x", [1, 2, 3]), ("c", "x", [3, 2, 1])]
    assert kendall_w(RankingTable.from_rows(one_reversed)) == pytest.approx(1 / 9)
    # With ties: W equals Friedman's tie-corrected chi-square / (m (n - 1)).
    rankings = {"a": [[1, 2], [3], [4]], "b": [[2], [1], [3, 4]], "c": [[1], [3], [2], [4]], "d": [[4], [1, 2, 3]]}
    rows = [(r, "x", g) for r, g in rankings.items()]

    def mid(groups):
        out, pos = {}, 1
        for g in groups:
            for x in g:
                out[x] = pos + (len(g) - 1) / 2
            pos += len(g)
        return [out[k] for k in (1, 2, 3, 4)]

    chi2 = friedmanchisquare(*np.array([mid(g) for g in rankings.values()]).T).statistic
    assert kendall_w(RankingTable.from_rows(rows)) == pytest.approx(chi2 / (4 * 3), abs=1e-12)
    # Raters who ranked different responses: W on the responses all of them ranked.
    partial = [("a", "y", [1, 2, 3, 9]), ("b", "y", [3, 2, 1]), ("c", "y", [1, 2, 3])]
    chi2 = friedmanchisquare([1, 3, 1], [2, 2, 2], [3, 1, 3]).statistic
    assert kendall_w(RankingTable.from_rows(partial)) == pytest.approx(chi2 / (3 * 2), abs=1e-12)


def test_alpha_ordinal_on_rank_positions_against_the_package():
    rows = [
        ("a", "x", [[1], [2], [3]]), ("b", "x", [[1], [3], [2]]), ("c", "x", [[2, 1], [3]]),
        ("a", "y", [7, 8, 9]), ("b", "y", [9, 8, 7]),
        ("c", "z", [4, 5]),
    ]
    # Independently: units (item, response) x raters of mid-rank positions.
    units = [("x", 1), ("x", 2), ("x", 3), ("y", 7), ("y", 8), ("y", 9), ("z", 4), ("z", 5)]
    pos = {
        "a": {("x", 1): 1, ("x", 2): 2, ("x", 3): 3, ("y", 7): 1, ("y", 8): 2, ("y", 9): 3},
        "b": {("x", 1): 1, ("x", 3): 2, ("x", 2): 3, ("y", 9): 1, ("y", 8): 2, ("y", 7): 3},
        "c": {("x", 2): 1.5, ("x", 1): 1.5, ("x", 3): 3, ("z", 4): 1, ("z", 5): 2},
    }
    data = [[pos[r].get(u, np.nan) for u in units] for r in "abc"]
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    result = ranking_agreement(RankingTable.from_rows(rows), n_boot=20, seed=0)
    assert result["alpha_ordinal"].value == pytest.approx(expected, abs=1e-12)
    assert result["alpha_ordinal"].n_items == 2  # z has one rater


# --- The external check: HateCheck's annotations ---


def test_hatecheck_fleiss_kappa_from_the_annotation_file():
    path = shared_data("hatecheck/test_suite_annotations.csv")
    with open(path, encoding="utf-8", newline="") as fh:
        records = list(csv.DictReader(fh))
    columns = [f"label_{k}" for k in range(1, 11)]
    rows = [(col, rec["case_id"], rec[col]) for rec in records for col in columns if rec[col]]
    table = LabelTable.from_rows(rows)
    got = fleiss_kappa(table)
    # Independently, straight from the CSV: every case has 5 labels from 2 categories.
    n_cases, per_item_sum, totals = 0, 0.0, Counter()
    for rec in records:
        labels = [rec[c] for c in columns if rec[c]]
        m = len(labels)
        assert m == 5
        counts = Counter(labels)
        per_item_sum += (sum(n * n for n in counts.values()) - m) / (m * (m - 1))
        totals.update(counts)
        n_cases += 1
    p_bar = per_item_sum / n_cases
    p_e = sum((n / (5 * n_cases)) ** 2 for n in totals.values())
    expected = (p_bar - p_e) / (1 - p_e)
    assert got == pytest.approx(expected, abs=1e-12)
    assert round(got, 2) == 0.94  # the HateCheck paper reports 0.93
    result = label_agreement(table, n_boot=50, seed=0)
    assert result["fleiss_kappa"].n_items == n_cases == 3728
    assert result["fleiss_kappa"].low < got < result["fleiss_kappa"].high


def test_empty_and_single_rater_inputs_give_undefined_figures_not_errors():
    # A project with no annotations yet, or one rater per item: every figure is NaN on 0 items.
    for table in (LabelTable.from_rows([], SAFETY_LABELS), LabelTable.from_rows([("a", 1, "safe"), ("a", 2, "unsafe")])):
        for est in label_agreement(table, ordinal=True, n_boot=5).values():
            assert math.isnan(est.value) and est.n_items == 0
        assert majority(LabelTable.from_rows([])) == {}
    assert annotator_agreement(LabelTable.from_rows([], SAFETY_LABELS, raters=["x"]))[0].n_items == 0
    assert all(math.isnan(e.value) for e in ranking_agreement(RankingTable.from_rows([]), n_boot=5).values())
    assert all(math.isnan(e.value) for e in category_agreement([], ["S1"], n_boot=5)["S1"].values())
    assert agreement_matrix(LabelTable.from_rows([])).rows() == []
