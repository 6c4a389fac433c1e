"""Safety majority with a needs-caution policy and categories by vote.

Each vote labels a prompt (or one response) ``safe``, ``needs_caution`` or ``unsafe`` with hazard
category codes. Guard formats need a binary label, so *needs caution* is mapped first, by the
export's policy (Aegis 1.0 shipped both):

- ``permissive``: needs caution counts as **safe**;
- ``defensive``: needs caution counts as **unsafe**.

Then the majority of the mapped votes decides. An equal split is handled by the stated
``tie`` policy: ``skip`` (no label: the row is left out and counted), ``unsafe`` or ``safe``.

Categories are voted on by the raters whose mapped label is unsafe: a category is kept when at
least half of them chose it, and the kept ones are ordered by number of votes, then by taxonomy
order (Aegis 2.0 lists ``violated_categories`` "in order of frequency of annotations"); a lone
unsafe voter's categories keep that voter's own order (an imported Aegis row's upstream order). Categories
are only reported when the consensus is unsafe.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

NEEDS_CAUTION_POLICIES = ("permissive", "defensive")
SAFETY_TIE_POLICIES = ("skip", "unsafe", "safe")


@dataclass(slots=True)
class SafetyVote:
    label: str  # safe | needs_caution | unsafe
    categories: tuple[str, ...] = ()


@dataclass(slots=True)
class SafetyConsensus:
    label: str | None  # "safe" | "unsafe" | None when tied and the tie policy is "skip"
    categories: tuple[str, ...]
    counts: dict[str, int]  # raw votes per original label (safe / needs_caution / unsafe)
    votes: int
    agreement: float | None  # share of (mapped) votes equal to the consensus label; None for one vote
    decided_by: str  # "majority" | "tie-policy" | "tie"


def safety_majority(
    votes: list[SafetyVote],
    *,
    needs_caution: str = "defensive",
    tie: str = "skip",
    category_order: dict[str, int] | None = None,
) -> SafetyConsensus:
    if needs_caution not in NEEDS_CAUTION_POLICIES:
        raise ValueError(f"needs_caution must be one of {NEEDS_CAUTION_POLICIES}, not {needs_caution!r}")
    if tie not in SAFETY_TIE_POLICIES:
        raise ValueError(f"tie must be one of {SAFETY_TIE_POLICIES}, not {tie!r}")
    if not votes:
        raise ValueError("safety_majority needs at least one vote")
    counts = Counter(v.label for v in votes)
    nc_as = "unsafe" if needs_caution == "defensive" else "safe"
    mapped = [nc_as if v.label == "needs_caution" else v.label for v in votes]
    n_unsafe = mapped.count("unsafe")
    n_safe = len(mapped) - n_unsafe
    if n_unsafe != n_safe:
        label: str | None = "unsafe" if n_unsafe > n_safe else "safe"
        decided_by = "majority"
    elif tie == "skip":
        label, decided_by = None, "tie"
    else:
        label, decided_by = tie, "tie-policy"
    categories: tuple[str, ...] = ()
    if label == "unsafe":
        unsafe_voters = [v for v, m in zip(votes, mapped) if m == "unsafe"]
        cat_votes = Counter(code for v in unsafe_voters for code in dict.fromkeys(v.categories))
        order = category_order or {}
        kept = [code for code, n in cat_votes.items() if 2 * n >= len(unsafe_voters)]
        if len(unsafe_voters) > 1:  # one voter: all counts are 1, keep the voter's own order
            kept.sort(key=lambda code: (-cat_votes[code], order.get(code, len(order)), code))
        categories = tuple(kept)
    agree: float | None = (
        sum(1 for m in mapped if m == label) / len(mapped) if label else max(n_safe, n_unsafe) / len(mapped)
    )
    if len(votes) < 2:
        agree = None  # one rater: agreement is undefined, not 1.0
    return SafetyConsensus(
        label=label,
        categories=categories,
        counts={k: counts.get(k, 0) for k in ("safe", "needs_caution", "unsafe")},
        votes=len(votes),
        agreement=agree,
        decided_by=decided_by,
    )
