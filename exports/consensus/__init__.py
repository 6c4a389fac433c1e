"""Consensus per item: turn the raw judgments of several raters into one label, with the method
named and every tie handled by a stated policy (never by silently taking the first).

- ``rankings``: Borda, Copeland, ranked pairs (Tideman) and Bradley–Terry over N-way rankings with
  ties (pairwise judgments count as two-response rankings);
- ``pairwise``: majority with strength for items judged on one pair;
- ``safety``: majority with a needs-caution policy and categories by vote;
- ``sources``: which raters' records count (human only, jury only, human with jury fallback,
  adjudicated only; adjudicated records override the others).

Everything here is pure Python over plain data (no ORM), so it is unit-tested on hand-made votes
and runs at export speed.
"""
from __future__ import annotations

from exports.consensus.pairwise import PairVote, pairwise_majority
from exports.consensus.rankings import (
    RANKING_METHODS,
    Preference,
    borda,
    bradley_terry,
    copeland,
    rank,
    ranked_pairs,
)
from exports.consensus.safety import SafetyConsensus, SafetyVote, safety_majority
from exports.consensus.sources import SOURCE_POLICIES, select_records

__all__ = [
    "RANKING_METHODS",
    "SOURCE_POLICIES",
    "PairVote",
    "Preference",
    "SafetyConsensus",
    "SafetyVote",
    "borda",
    "bradley_terry",
    "copeland",
    "pairwise_majority",
    "rank",
    "ranked_pairs",
    "safety_majority",
    "select_records",
]
