"""Consensus methods on hand-made votes: ties, Condorcet cycles, Bradley–Terry convergence,
pairwise majority with strength, safety majority with the needs-caution policy, source policy."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest

from exports.consensus import (
    PairVote,
    SafetyVote,
    borda,
    bradley_terry,
    copeland,
    pairwise_majority,
    rank,
    ranked_pairs,
    safety_majority,
    select_records,
)


def test_borda_counts_ties_as_half_points_and_reports_equal_totals_as_a_tie():
    # given: 1 > 2 > 3 twice, 2 > 1 > 3 twice
    votes = [[[1], [2], [3]]] * 2 + [[[2], [1], [3]]] * 2
    # when
    pref = borda(votes)
    # then: 1 and 2 both score 6 — a tie, never silently "1 first"
    assert pref.scores == {1: 6.0, 2: 6.0, 3: 0.0}
    assert pref.groups == ((1, 2), (3,))
    # a tie inside a vote: [[1, 2], [3]] gives 1 and 2 one point for 3 and half a point each other
    assert borda([[[1, 2], [3]]]).scores == {1: 1.5, 2: 1.5, 3: 0.0}


def test_copeland_scores_duels():
    votes = [[[1], [2], [3]]] * 3 + [[[3], [2], [1]]] * 2
    pref = copeland(votes)
    # 1 beats 2 (3:2) and 3 (3:2); 2 beats 3 (3:2)
    assert pref.scores == {1: 2.0, 2: 1.0, 3: 0.0}
    assert pref.order() == [1, 2, 3]
    assert pref.agreement == pytest.approx((3 * 3 + 0) / 15)


def test_ranked_pairs_breaks_a_condorcet_cycle_at_its_weakest_majority():
    # given: A>B 6:3 (margin 3), B>C 7:2 (margin 5), C>A 5:4 (margin 1): a cycle A>B>C>A
    votes = [[[1], [2], [3]]] * 4 + [[[2], [3], [1]]] * 3 + [[[3], [1], [2]]] * 2
    # when
    pref = ranked_pairs(votes)
    # then: B>C and A>B are locked; C>A (weakest) would close the cycle and is skipped
    assert pref.groups == ((1,), (2,), (3,))
    assert pref.detail["skipped_majorities"] == [(3, 1)]


def test_ranked_pairs_equal_margin_cycle_is_skipped_entirely_not_by_order():
    # a perfect rock-paper-scissors: every majority has margin 1
    votes = [[[1], [2], [3]], [[2], [3], [1]], [[3], [1], [2]]]
    pref = ranked_pairs(votes)
    assert pref.groups == ((1, 2, 3),)
    assert not pref.has_order
    assert sorted(pref.detail["skipped_majorities"]) == [(1, 2), (2, 3), (3, 1)]


def test_ranked_pairs_locks_what_is_outside_an_equal_margin_cycle():
    # 1,2,3 cycle with margin 1; 4 is beaten by everyone with margin 3
    votes = [[[1], [2], [3], [4]], [[2], [3], [1], [4]], [[3], [1], [2], [4]]]
    pref = ranked_pairs(votes)
    assert pref.groups == ((1, 2, 3), (4,))


def test_bradley_terry_converges_and_recovers_known_strengths():
    # given: games sampled from strengths 4 : 2 : 1
    rng = random.Random(7)
    strength = {1: 4.0, 2: 2.0, 3: 1.0}
    votes = []
    for _ in range(3000):
        a, b = rng.sample([1, 2, 3], 2)
        winner = a if rng.random() < strength[a] / (strength[a] + strength[b]) else b
        votes.append([[winner], [b if winner == a else a]])
    # when
    pref = bradley_terry(votes)
    # then
    assert pref.detail["converged"] is True
    assert pref.order() == [1, 2, 3]
    assert math.exp(pref.scores[1] - pref.scores[2]) == pytest.approx(2.0, rel=0.15)
    assert math.exp(pref.scores[2] - pref.scores[3]) == pytest.approx(2.0, rel=0.15)


def test_bradley_terry_stays_finite_for_an_undefeated_response_and_ties_symmetric_ones():
    pref = bradley_terry([[[1], [2]]] * 5)
    assert all(math.isfinite(s) for s in pref.scores.values())
    assert pref.order() == [1, 2]
    sym = bradley_terry([[[1], [2]], [[2], [1]]])
    assert sym.groups == ((1, 2),)
    assert sym.detail["converged"] is True


def test_all_methods_agree_on_a_unanimous_ranking_and_unknown_method_is_an_error():
    votes = [[[5], [6, 7], [8]]] * 3
    for method in ("borda", "copeland", "ranked-pairs", "bradley-terry"):
        pref = rank(method, votes)
        assert pref.groups == ((5,), (6, 7), (8,)), method
        assert pref.agreement == 1.0
    with pytest.raises(ValueError, match="Unknown ranking method"):
        rank("plurality", votes)


def test_pairwise_majority_with_strength():
    # given: two votes for a (strength 3 and 1), one for b
    pc = pairwise_majority([PairVote(1, 2, "a", 3), PairVote(1, 2, "a", 1), PairVote(1, 2, "b", 2)])
    assert (pc.winner, pc.loser, pc.decided_by) == (1, 2, "count")
    assert pc.margin == pytest.approx(2.0)  # mean strength of the winning votes
    assert pc.agreement == pytest.approx(2 / 3)
    # a vote given the other way round (b, a) counts for the same response
    assert pairwise_majority([PairVote(2, 1, "a", 2)]).winner == 2
    # equal count: summed strength decides
    pc = pairwise_majority([PairVote(1, 2, "a", 3), PairVote(1, 2, "b", 1)])
    assert (pc.winner, pc.decided_by) == (1, "strength")
    # equal count and equal strength: an explicit tie
    pc = pairwise_majority([PairVote(1, 2, "a", 2), PairVote(1, 2, "b", 2), PairVote(1, 2, "tie", 0)])
    assert pc.winner is None and pc.decided_by == "tie"


def test_safety_majority_needs_caution_policy_and_categories_by_vote():
    votes = [
        SafetyVote("unsafe", ("S1", "S3")),
        SafetyVote("needs_caution", ("S3",)),
        SafetyVote("safe"),
    ]
    order = {"S1": 0, "S3": 2}
    defensive = safety_majority(votes, needs_caution="defensive", category_order=order)
    assert defensive.label == "unsafe"
    # S3 chosen by both unsafe voters, S1 by one of two (at least half): kept, ordered by votes
    assert defensive.categories == ("S3", "S1")
    assert defensive.counts == {"safe": 1, "needs_caution": 1, "unsafe": 1}
    permissive = safety_majority(votes, needs_caution="permissive", category_order=order)
    assert permissive.label == "safe" and permissive.categories == ()
    # a 1:1 split follows the stated tie policy
    tied = [SafetyVote("unsafe", ("S1",)), SafetyVote("safe")]
    assert safety_majority(tied, tie="skip").label is None
    assert safety_majority(tied, tie="unsafe").label == "unsafe"
    assert safety_majority(tied, tie="safe").label == "safe"
    # a category only one of three unsafe voters chose is dropped
    three = [SafetyVote("unsafe", ("S1",)), SafetyVote("unsafe", ("S1",)), SafetyVote("unsafe", ("S9",))]
    assert safety_majority(three).categories == ("S1",)


@dataclass
class R:
    source: str


def test_source_policies_and_adjudication_override():
    records = [R("human"), R("import"), R("jury")]
    assert select_records(records, "human-only") == ([records[0], records[1]], "human+import")
    assert select_records(records, "jury-only") == ([records[2]], "jury")
    assert select_records(records, "human-with-jury-fallback")[1] == "human+import"
    assert select_records([R("jury")], "human-with-jury-fallback")[1] == "jury"
    assert select_records([R("jury")], "human-only") == ([], "")
    assert select_records(records, "adjudicated-only") == ([], "")
    adjudicated = records + [R("adjudication")]
    for policy in ("human-only", "jury-only", "human-with-jury-fallback", "adjudicated-only"):
        chosen, source = select_records(adjudicated, policy)
        assert source == "adjudication" and chosen == [adjudicated[3]], policy


def test_one_rater_has_no_agreement_figure_and_no_strength_gives_no_margin():
    # one vote: agreement is undefined, not 1.0, under every method and for safety
    for method in ("borda", "copeland", "ranked-pairs", "bradley-terry"):
        assert rank(method, [[[1], [2]]]).agreement is None, method
    assert rank("borda", [[[1], [2]], [[1], [2]]]).agreement == 1.0
    assert safety_majority([SafetyVote("unsafe", ("S1",))]).agreement is None
    single = pairwise_majority([PairVote(1, 2, "b", 3)])
    assert (single.winner, single.agreement, single.margin) == (2, None, 3.0)
    # a preference whose source states no strength (HH-RLHF): a winner, but no margin
    unstated = pairwise_majority([PairVote(1, 2, "a", None), PairVote(1, 2, "a", None)])
    assert (unstated.winner, unstated.margin, unstated.agreement) == (1, None, 1.0)
    # stated strengths average over the votes that stated one
    mixed = pairwise_majority([PairVote(1, 2, "a", None), PairVote(1, 2, "a", 3)])
    assert mixed.margin == 3.0
