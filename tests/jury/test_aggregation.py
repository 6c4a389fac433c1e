"""Aggregation rules on hand-made votes (no models, no database)."""
from __future__ import annotations

import pytest

from jury.aggregation import (
    Vote,
    aggregate,
    pair_label_fn,
    principle_preference,
    ranking_from_pairs,
    safety_label_fn,
)

SAFETY = safety_label_fn(0.35, 0.65)


def safety_vote(juror: str, p_unsafe: float, weight: float = 1.0) -> Vote:
    return Vote(juror=juror, probs={"safe": 1 - p_unsafe, "unsafe": p_unsafe}, label=SAFETY({"unsafe": p_unsafe}), weight=weight)


def test_majority_takes_the_most_common_label_and_reports_the_vote_share():
    # given three jurors, two say unsafe
    votes = [safety_vote("a", 0.9), safety_vote("b", 0.8), safety_vote("c", 0.1)]
    # when
    out = aggregate(votes, rule="majority", label_fn=SAFETY, min_confidence=0.6)
    # then
    assert out.label == "unsafe"
    assert out.confidence == pytest.approx(2 / 3)
    assert out.split and out.escalated and "jurors disagree" in out.reasons


def test_majority_tie_is_escalated():
    out = aggregate([safety_vote("a", 0.9), safety_vote("b", 0.1)], rule="majority", label_fn=SAFETY)
    assert "tied vote" in out.reasons and out.escalated
    assert out.confidence == pytest.approx(0.5)


def test_mean_pools_probabilities():
    # mean of 0.9 and 0.6 is 0.75 -> unsafe, confidence 0.75
    out = aggregate([safety_vote("a", 0.9), safety_vote("b", 0.6)], rule="mean", label_fn=SAFETY, min_confidence=0.7)
    assert out.label == "unsafe"
    assert out.probs["unsafe"] == pytest.approx(0.75)
    assert out.confidence == pytest.approx(0.75)


def test_mean_in_the_caution_band_is_needs_caution_and_escalated():
    out = aggregate([safety_vote("a", 0.5), safety_vote("b", 0.5)], rule="mean", label_fn=SAFETY)
    assert out.label == "needs_caution"
    assert out.escalated and "needs caution" in out.reasons
    assert out.confidence == pytest.approx(0.0)


def test_weighted_follows_the_heavier_juror():
    votes = [safety_vote("strong", 0.9, weight=3.0), safety_vote("weak", 0.1, weight=1.0)]
    weighted = aggregate(votes, rule="weighted", label_fn=SAFETY, escalate_on_split=False)
    plain = aggregate(votes, rule="mean", label_fn=SAFETY, escalate_on_split=False)
    assert weighted.probs["unsafe"] == pytest.approx((3 * 0.9 + 0.1) / 4)
    assert weighted.label == "unsafe"
    assert plain.label == "needs_caution"  # the unweighted mean (0.5) sits in the band


def test_unanimous_confident_jury_decides():
    out = aggregate([safety_vote("a", 0.05), safety_vote("b", 0.1)], rule="unanimous", label_fn=SAFETY, min_confidence=0.8)
    assert out.label == "safe" and not out.escalated
    assert out.confidence == pytest.approx(0.9)  # the least confident juror


def test_unanimous_else_human():
    split = aggregate([safety_vote("a", 0.05), safety_vote("b", 0.9)], rule="unanimous", label_fn=SAFETY)
    assert split.escalated and "not unanimous" in split.reasons
    unsure = aggregate([safety_vote("a", 0.2), safety_vote("b", 0.25)], rule="unanimous", label_fn=SAFETY, min_confidence=0.9)
    assert unsure.escalated and "a juror is unsure" in unsure.reasons


def test_a_position_inconsistent_juror_escalates_the_pair():
    votes = [
        Vote(juror="a", probs={"a": 0.9, "b": 0.1}, label="a", position_consistent=True),
        Vote(juror="b", probs={"a": 0.8, "b": 0.2}, label="a", position_consistent=False),
    ]
    out = aggregate(votes, rule="mean", label_fn=pair_label_fn(0.5), min_confidence=0.5)
    assert out.label == "a"
    assert out.escalated and out.reasons == ["position-inconsistent: b"]


def test_unknown_rule_and_empty_votes_are_errors():
    with pytest.raises(ValueError):
        aggregate([safety_vote("a", 0.1)], rule="dictator")
    with pytest.raises(ValueError):
        aggregate([], rule="mean")


def test_ranking_from_pairs_with_ties():
    assert ranking_from_pairs([1, 2, 3], {(1, 2): 0.9, (1, 3): 0.9, (2, 3): 0.5}) == [[1], [2, 3]]
    assert ranking_from_pairs([1, 2, 3], {(1, 2): 0.9, (1, 3): 0.8, (2, 3): 0.3}) == [[1], [3], [2]]
    assert ranking_from_pairs([5, 6], {(5, 6): 0.2}) == [[6], [5]]
    assert ranking_from_pairs([5, 6], {(5, 6): 0.51}) == [[5, 6]]


def test_principle_preference_follows_buyl_et_al():
    assert principle_preference(0.6, 0.3, 0.1) == 1
    assert principle_preference(0.2, 0.5, 0.3) == -1
    assert principle_preference(0.3, 0.3, 0.4) is None  # NA wins -> NaN
    assert principle_preference(0.4, 0.4, 0.2) is None  # tie -> NaN
