"""Aggregation rules of the panel (pure functions, no database).

Each juror's vote on one target is a probability distribution over the target's labels
(``{"safe": .., "unsafe": ..}``, ``{"a": .., "b": ..}`` or ``{"A": .., "B": .., "NA": ..}``) and the
juror's own label. Rules:

- ``majority``: the label most jurors chose (PoLL's max voting); confidence = the winning share of
  votes; a tie is a split. Probabilities reported are the plain mean.
- ``mean``: the mean distribution (PoLL's average pooling); label = ``label_fn(mean)``;
  confidence = the mean probability of that label.
- ``weighted``: as ``mean`` with per-juror weights.
- ``unanimous``: the common label when every juror chose it with at least ``min_confidence``;
  otherwise the jury abstains (escalated, "not unanimous"), reporting the mean.

Escalation (the item goes to humans first) when the jury is split (jurors' labels differ, with
``escalate_on_split``), when the confidence is below ``min_confidence``, when the label is
"needs_caution", or when a juror's pair judgment flipped with the order.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

RULES = ("majority", "mean", "weighted", "unanimous")


@dataclass
class Vote:
    juror: str
    probs: dict[str, float]
    label: str
    weight: float = 1.0
    position_consistent: bool | None = None

    @property
    def confidence(self) -> float:
        return float(self.probs.get(self.label, 0.0))


@dataclass
class Outcome:
    label: str
    probs: dict[str, float]
    confidence: float
    split: bool
    escalated: bool
    reasons: list[str] = field(default_factory=list)
    votes: dict[str, str] = field(default_factory=dict)


def mean_probs(votes: list[Vote], weighted: bool = False) -> dict[str, float]:
    keys = sorted({k for v in votes for k in v.probs})
    total = sum(v.weight if weighted else 1.0 for v in votes)
    return {k: sum((v.weight if weighted else 1.0) * v.probs.get(k, 0.0) for v in votes) / total for k in keys}


def argmax_label(probs: dict[str, float]) -> str:
    return max(sorted(probs), key=lambda k: probs[k])


def safety_label_fn(caution_low: float, caution_high: float) -> Callable[[dict[str, float]], str]:
    """safe / needs_caution / unsafe from P(unsafe) and the needs-caution band [low, high)."""

    def label(probs: dict[str, float]) -> str:
        p = probs.get("unsafe", 0.0)
        if p >= caution_high:
            return "unsafe"
        if p >= caution_low:
            return "needs_caution"
        return "safe"

    return label


def pair_label_fn(threshold: float) -> Callable[[dict[str, float]], str]:
    """``a`` when P(a better) >= threshold, else ``b``."""

    def label(probs: dict[str, float]) -> str:
        return "a" if probs.get("a", 0.0) >= threshold else "b"

    return label


def label_confidence(label: str, probs: dict[str, float]) -> float:
    """The probability mass behind a label. needs_caution is not a class of its own: its
    confidence is how far P(unsafe) is from a coin toss, doubled (so it is always low)."""
    if label == "needs_caution":
        return abs(probs.get("unsafe", 0.5) - 0.5) * 2
    if label == "safe" and "unsafe" in probs:
        return 1.0 - probs["unsafe"]
    return float(probs.get(label, 0.0))


def aggregate(
    votes: list[Vote],
    *,
    rule: str,
    label_fn: Callable[[dict[str, float]], str] = argmax_label,
    min_confidence: float = 0.7,
    escalate_on_split: bool = True,
) -> Outcome:
    if not votes:
        raise ValueError("no votes to aggregate")
    if rule not in RULES:
        raise ValueError(f"unknown aggregation rule {rule!r}; have {RULES}")
    reasons: list[str] = []
    labels = [v.label for v in votes]
    split = len(set(labels)) > 1
    probs = mean_probs(votes, weighted=(rule == "weighted"))

    if rule == "majority":
        counts = Counter(labels).most_common()
        top = counts[0][1]
        winners = sorted(label for label, n in counts if n == top)
        if len(winners) > 1:
            label = label_fn(probs) if label_fn(probs) in winners else winners[0]
            reasons.append("tied vote")
        else:
            label = winners[0]
        confidence = top / len(votes)
    elif rule in ("mean", "weighted"):
        label = label_fn(probs)
        confidence = label_confidence(label, probs)
    else:  # unanimous
        label = label_fn(probs)
        confidence = label_confidence(label, probs)
        if split:
            reasons.append("not unanimous")
        elif min(label_confidence(v.label, v.probs) for v in votes) < min_confidence:
            reasons.append("a juror is unsure")
        else:
            label = labels[0]
            confidence = min(label_confidence(v.label, v.probs) for v in votes)

    if split and escalate_on_split and "not unanimous" not in reasons:
        reasons.append("jurors disagree")
    if confidence < min_confidence:
        reasons.append(f"confidence {confidence:.2f} < {min_confidence:.2f}")
    if label == "needs_caution":
        reasons.append("needs caution")
    flipped = [v.juror for v in votes if v.position_consistent is False]
    if flipped:
        reasons.append("position-inconsistent: " + ", ".join(sorted(flipped)))
    confidence = min(1.0, max(0.0, float(confidence)))
    return Outcome(
        label=label, probs=probs, confidence=confidence, split=split, escalated=bool(reasons),
        reasons=reasons, votes={v.juror: v.label for v in votes},
    )


def ranking_from_pairs(response_ids: list[int], p_first: dict[tuple[int, int], float], tie_margin: float = 0.05) -> list[list[int]]:
    """Tie groups, best first, from P(a better than b) for pairs (a, b).

    Each response scores the sum of its win probabilities (a Borda/Copeland-style count that
    uses every pair). Responses whose scores differ by less than ``tie_margin`` x (pairs each took
    part in) share a group.

    >>> ranking_from_pairs([1, 2, 3], {(1, 2): 0.9, (1, 3): 0.9, (2, 3): 0.5})
    [[1], [2, 3]]
    """
    score = dict.fromkeys(response_ids, 0.0)
    for (a, b), p in p_first.items():
        score[a] += p
        score[b] += 1.0 - p
    per = max(1, len(response_ids) - 1)
    ordered = sorted(response_ids, key=lambda r: (-score[r], r))
    groups: list[list[int]] = []
    for r in ordered:
        if groups and abs(score[groups[-1][0]] - score[r]) < tie_margin * per:
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def principle_preference(prob_a: float, prob_b: float, prob_na: float) -> int | None:
    """Buyl et al.: p_i = sign(prob_A - prob_B); None (NaN) on a tie or when NA is the most likely."""
    if prob_na > prob_a and prob_na > prob_b:
        return None
    if prob_a == prob_b:
        return None
    return 1 if prob_a > prob_b else -1
