"""Pairwise majority with strength.

Each vote on the pair (a, b) picks ``a``, ``b`` or ``tie`` with a strength 0..3 (3 much better, 2
better, 1 slightly better, 0 tie), or no strength (``None``: an imported preference whose source
states none, e.g. HH-RLHF). The consensus:

1. **majority by count**: the response more raters chose wins;
2. **strength breaks an equal count**: if as many raters chose a as chose b, the side with the
   larger summed strength wins;
3. otherwise the pair is a **tie**: no preference (the export's tie policy decides what a tie
   becomes; by default the item is skipped and counted in the manifest).

The *margin* is the mean stated strength of the votes that chose the winner (so it lies in [1, 3]:
how much better the winner is, according to the raters who preferred it and said how much);
``None`` when none of them stated a strength. The DPO ``margin`` column puts it on the export's one
scale (see ``exports.formats.margin_of``). ``agreement`` says how many raters that was (``None``
for a single vote: one rater's agreement is not a figure).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PairVote:
    a: int
    b: int
    choice: str  # "a" | "b" | "tie"
    strength: int | None  # 0..3; None: the source states no strength


@dataclass(slots=True)
class PairConsensus:
    a: int
    b: int
    winner: int | None  # None: tie
    loser: int | None
    votes_a: int
    votes_b: int
    votes_tie: int
    margin: float | None  # mean stated strength of the winning votes, 1..3; None: no strength stated or a tie
    agreement: float | None  # share of votes that chose the winner (or "tie"); None for a single vote
    decided_by: str  # "count" | "strength" | "tie"

    @property
    def votes(self) -> int:
        return self.votes_a + self.votes_b + self.votes_tie


def pairwise_majority(votes: list[PairVote]) -> PairConsensus:
    """Consensus of votes on one pair. Votes given as (b, a) are flipped onto (a, b) first."""
    if not votes:
        raise ValueError("pairwise_majority needs at least one vote")
    first = votes[0]
    a, b = (first.a, first.b) if first.a <= first.b else (first.b, first.a)
    votes_a = votes_b = votes_tie = 0
    signed = 0.0  # positive: towards a
    strength_a = strength_b = 0
    stated_a = stated_b = 0  # votes that stated a strength
    for v in votes:
        va, vb, choice = v.a, v.b, v.choice
        if not ((va == a and vb == b) or (va == b and vb == a)):
            raise ValueError(f"votes on different pairs: {(a, b)} and {(va, vb)}")
        if choice == "tie":
            votes_tie += 1
            continue
        picked = va if choice == "a" else vb
        strength = v.strength
        if picked == a:
            votes_a += 1
            if strength is not None:
                stated_a += 1
                strength_a += strength
                signed += strength
        else:
            votes_b += 1
            if strength is not None:
                stated_b += 1
                strength_b += strength
                signed -= strength
    n = votes_a + votes_b + votes_tie
    if votes_a != votes_b:
        decided_by = "count"
        winner_is_a = votes_a > votes_b
    elif signed != 0:
        decided_by = "strength"
        winner_is_a = signed > 0
    else:
        return PairConsensus(a, b, None, None, votes_a, votes_b, votes_tie, None, votes_tie / n if n > 1 else None, "tie")
    winner, loser = (a, b) if winner_is_a else (b, a)
    stated, total = (stated_a, strength_a) if winner_is_a else (stated_b, strength_b)
    margin = total / stated if stated else None
    agreement = (votes_a if winner_is_a else votes_b) / n if n > 1 else None
    return PairConsensus(a, b, winner, loser, votes_a, votes_b, votes_tie, margin, agreement, decided_by)
