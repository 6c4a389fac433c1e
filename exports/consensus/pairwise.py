"""Pairwise majority with strength.

Each vote on the pair (a, b) picks ``a``, ``b`` or ``tie`` with a strength 0..3 (3 much better, 2
better, 1 slightly better, 0 tie). The consensus:

1. **majority by count**: the response more raters chose wins;
2. **strength breaks an equal count**: if as many raters chose a as chose b, the side with the
   larger summed strength wins;
3. otherwise the pair is a **tie**: no preference (the export's tie policy decides what a tie
   becomes; by default the item is skipped and counted in the manifest).

The *margin* is the mean strength of the votes that chose the winner (so it lies in [1, 3]: how
much better the winner is, according to the raters who preferred it); it is what ``margin`` in a
DPO row carries for a pairwise item. ``agreement`` says how many raters that was.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PairVote:
    a: int
    b: int
    choice: str  # "a" | "b" | "tie"
    strength: int  # 0..3


@dataclass(slots=True)
class PairConsensus:
    a: int
    b: int
    winner: int | None  # None: tie
    loser: int | None
    votes_a: int
    votes_b: int
    votes_tie: int
    margin: float  # mean strength of the winning votes, 1..3; 0.0 for a tie
    agreement: float  # share of votes that chose the winner (or "tie" when the consensus is a tie)
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
    for v in votes:
        va, vb, choice = v.a, v.b, v.choice
        if not ((va == a and vb == b) or (va == b and vb == a)):
            raise ValueError(f"votes on different pairs: {(a, b)} and {(va, vb)}")
        if choice == "tie":
            votes_tie += 1
            continue
        picked = va if choice == "a" else vb
        if picked == a:
            votes_a += 1
            strength_a += v.strength
            signed += v.strength
        else:
            votes_b += 1
            strength_b += v.strength
            signed -= v.strength
    n = votes_a + votes_b + votes_tie
    if votes_a != votes_b:
        decided_by = "count"
        winner_is_a = votes_a > votes_b
    elif signed != 0:
        decided_by = "strength"
        winner_is_a = signed > 0
    else:
        return PairConsensus(a, b, None, None, votes_a, votes_b, votes_tie, 0.0, votes_tie / n, "tie")
    winner, loser = (a, b) if winner_is_a else (b, a)
    margin = strength_a / votes_a if winner_is_a else strength_b / votes_b
    agreement = (votes_a if winner_is_a else votes_b) / n
    return PairConsensus(a, b, winner, loser, votes_a, votes_b, votes_tie, margin, agreement, decided_by)
