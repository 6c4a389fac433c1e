"""SALT alignment labels on hand-made token sequences, worked out by hand against REFERENCE §3:
Needleman–Wunsch with match +1, mismatch −1, gap −1; C same token, I gap in generated, D gap in
edited, S substitution; weights on edited C/I/S +1, on generated C +1.0, D −0.1, S −0.1."""
from __future__ import annotations

import random

import pytest

from exports.salt import GAP, align, score_matrix


def test_identical_sequences_are_all_c_with_full_weight_on_both_sides():
    a = align([11, 12, 13], [11, 12, 13])
    # three matches: score 3, every position C
    assert a.labels == ["C", "C", "C"] and a.score == 3
    assert a.generated == a.edited == [11, 12, 13]
    assert a.generated_weights == [1.0, 1.0, 1.0] and a.edited_weights == [1.0, 1.0, 1.0]


def test_one_substitution_is_s_negative_on_generated_positive_on_edited():
    # generated "the cat sat" -> edited "the dog sat": match, mismatch, match = 1 - 1 + 1 = 1; a
    # gap pair instead of the mismatch would cost -2 (1 - 1 - 1 + 1 = 0 < 1), so S
    a = align([1, 2, 3], [1, 9, 3])
    assert a.labels == ["C", "S", "C"] and a.score == 1
    assert a.generated_weights == [1.0, -0.1, 1.0]
    assert a.edited_weights == [1.0, 1.0, 1.0]


def test_an_added_token_is_i_and_has_no_generated_weight():
    # the edit adds "not": 1 2 | 1 7 2 -> C, I, C = 1 - 1 + 1 = 1
    a = align([1, 2], [1, 7, 2])
    assert a.labels == ["C", "I", "C"] and a.score == 1
    assert a.generated == [1, GAP, 2] and a.edited == [1, 7, 2]
    assert a.generated_weights == [1.0, 1.0]  # two generated tokens, both C
    assert a.edited_weights == [1.0, 1.0, 1.0]  # three edited tokens: C, I, C


def test_an_omitted_token_is_d_with_the_unlikelihood_weight():
    # the edit omits token 5: 4 5 6 | 4 6 -> C, D, C = 1 - 1 + 1 = 1
    a = align([4, 5, 6], [4, 6])
    assert a.labels == ["C", "D", "C"] and a.score == 1
    assert a.generated == [4, 5, 6] and a.edited == [4, GAP, 6]
    assert a.generated_weights == [1.0, -0.1, 1.0]
    assert a.edited_weights == [1.0, 1.0]


def test_mixed_edit_worked_by_hand():
    # generated 1 2 3 4 5, edited 1 3 4 8 5 9.
    # Best: 1=1 (C), 2 dropped (D), 3=3 (C), 4=4 (C), 8 added (I), 5=5 (C), 9 added (I):
    # 4 matches, 3 gaps = 4 - 3 = 1. Substituting 2->3, 3->4, 4->8 instead gives
    # 1 - 1 - 1 - 1 + 1 - 1 = -2; no alignment does better than 1.
    a = align([1, 2, 3, 4, 5], [1, 3, 4, 8, 5, 9])
    assert a.score == 1
    assert a.labels == ["C", "D", "C", "C", "I", "C", "I"]
    assert a.generated == [1, 2, 3, 4, GAP, 5, GAP]
    assert a.edited == [1, GAP, 3, 4, 8, 5, 9]
    # generated tokens 1 2 3 4 5 -> C D C C C; edited tokens 1 3 4 8 5 9 -> C C C I C I
    assert a.generated_weights == [1.0, -0.1, 1.0, 1.0, 1.0]
    assert a.edited_weights == [1.0] * 6
    assert a.counts() == {"C": 4, "I": 2, "D": 1, "S": 0}


def test_hand_filled_matrix():
    # generated 1 2, edited 2 1 (rows: generated prefixes; columns: edited prefixes)
    #        -   2   1
    #   -    0  -1  -2
    #   1   -1  -1   0      H[1,2] = H[0,1] + 1 (1 = 1)
    #   2   -2   0  -1      H[2,1] = H[1,0] + 1 (2 = 2); H[2,2] = max(H[1,1]-1, H[1,2]-1, H[2,1]-1) = -1
    assert score_matrix([1, 2], [2, 1]).tolist() == [[0, -1, -2], [-1, -1, 0], [-2, 0, -1]]


def test_ties_prefer_the_diagonal_then_d_then_i_from_the_end():
    # 1 2 vs 2 1: "I C D" (2 added, 1 kept, 2 dropped) and "D C I" both score -1, S S scores -2.
    # From the end, cell (2,2): the diagonal gives H[1,1]-1 = -2, not -1; D gives H[1,2]-1 = -1: D.
    # Then (1,2): 1 = 1 and H[0,1]+1 = 0: C. Then (0,1): I.
    a = align([1, 2], [2, 1])
    assert a.labels == ["I", "C", "D"] and a.score == -1
    # a single mismatch: S (-1) beats D + I (-2)
    assert align([3], [4]).labels == ["S"]
    # 1 vs 2 2: S then I, or I then S, both -2; from the end the diagonal (1 vs the last 2) wins
    assert align([1], [2, 2]).labels == ["I", "S"]


def test_empty_sides():
    assert align([], []).labels == [] and align([], []).score == 0
    a = align([], [1, 2])
    assert a.labels == ["I", "I"] and a.generated_weights == [] and a.edited_weights == [1.0, 1.0] and a.score == -2
    b = align([1, 2, 3], [])
    assert b.labels == ["D", "D", "D"] and b.generated_weights == [-0.1, -0.1, -0.1] and b.edited_weights == []


def _best_score_brute_force(g: list[int], e: list[int]) -> int:
    """The best global alignment score by enumerating every alignment (tiny inputs only)."""
    if not g:
        return -len(e)
    if not e:
        return -len(g)
    return max(
        _best_score_brute_force(g[1:], e[1:]) + (1 if g[0] == e[0] else -1),
        _best_score_brute_force(g[1:], e) - 1,
        _best_score_brute_force(g, e[1:]) - 1,
    )


@pytest.mark.parametrize("seed", range(5))
def test_random_small_sequences_reach_the_optimum_and_stay_consistent(seed):
    rng = random.Random(seed)
    for _ in range(40):
        g = [rng.randint(1, 4) for _ in range(rng.randint(0, 6))]
        e = [rng.randint(1, 4) for _ in range(rng.randint(0, 6))]
        a = align(g, e)
        assert a.score == _best_score_brute_force(g, e), (g, e)
        # the labels score exactly what the matrix says
        assert sum({"C": 1, "S": -1, "I": -1, "D": -1}[x] for x in a.labels) == a.score
        # removing the gaps gives back each side; one weight per token of each side
        assert [t for t in a.generated if t != GAP] == g and [t for t in a.edited if t != GAP] == e
        assert len(a.generated_weights) == len(g) and len(a.edited_weights) == len(e)
        for label, tg, te in zip(a.labels, a.generated, a.edited):
            assert label == ("I" if tg == GAP else "D" if te == GAP else "C" if tg == te else "S")

