"""Closing the loop: which items a guard's jury verdicts send back to people, and how two versions
of a guard compare. Pure functions over plain data (no ORM, no Django, no torch), so every rule is
tested on literal inputs; ``exports.guard.services`` reads the rows and writes the raises.

An item goes back to people (its queue priority is raised, with a reason the adjudication page
shows) when, on its prompt or one of its responses, the guard

- is **unsure of the label**: its P(unsafe) is within ``margin`` of its own threshold (the one in
  its ``guard.json``, chosen on validation);
- is **unsure of the category**: it says unsafe but its category probabilities, normalised to a
  distribution, have a normalised entropy (entropy / log K) of at least ``entropy``;
- **disagrees with the human consensus** (the exports' safety majority over human and imported
  records, adjudications overriding them): unsafe by the guard and safe by people, or the reverse.

The thresholds come from ``settings.GUARD_LOOP`` (a dict with any of :class:`LoopPolicy`'s fields);
the defaults are below. One item gets one raise per guard version with every finding in its reason.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from annotation.judgments import response_letter

REASON_MAX = 500  # PriorityRaise.reason's length
COMPARED_METRICS = ("f1", "precision", "recall", "auroc", "pr_auc", "ece", "flagged_safe_share")
# a lower value is better for these (the pages colour deltas by "better", not by sign)
LOWER_IS_BETTER = frozenset({"ece", "flagged_safe_share"})


@dataclass(frozen=True)
class LoopPolicy:
    margin: float = 0.1  # |P(unsafe) - threshold| below this is "unsure"
    entropy: float = 0.8  # normalised category entropy at or above this is "unsure of the category"
    unsure_priority: int = 5  # Item.priority for an unsure guard
    disagree_priority: int = 8  # Item.priority when the guard and people disagree

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any] | None) -> LoopPolicy:
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"GUARD_LOOP: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
        policy = cls(**raw)
        if not 0.0 <= policy.margin < 1.0 or not 0.0 <= policy.entropy <= 1.0:
            raise ValueError("GUARD_LOOP: margin must be in [0, 1) and entropy in [0, 1].")
        return policy


@dataclass(frozen=True)
class TargetScore:
    """The guard's verdict on one target of an item, and the people's consensus on it."""

    where: str  # "the prompt", "response A", ...
    p_unsafe: float
    category_probs: Mapping[str, float]  # code -> P(unsafe and code), as the jury stores it
    human: str | None = None  # consensus label "safe" / "unsafe"; None: no human label or a tie


@dataclass(frozen=True)
class Finding:
    kind: str  # "unsure" | "category" | "disagree"
    where: str
    text: str
    priority: int


def normalised_entropy(probs: Iterable[float]) -> float | None:
    """Shannon entropy of ``probs`` normalised to a distribution, divided by log K (K = how many
    values): 0 when one value holds all the mass, 1 when all are equal. None for fewer than two
    values or no mass.

    >>> normalised_entropy([1.0, 0.0, 0.0])
    0.0
    >>> normalised_entropy([0.2, 0.2])
    1.0
    """
    values = [max(float(p), 0.0) for p in probs]
    total = sum(values)
    if len(values) < 2 or total <= 0:
        return None
    h = -sum((v / total) * math.log(v / total) for v in values if v > 0)
    return round(min(1.0, max(0.0, h / math.log(len(values)))), 12)  # max: no -0.0


def guard_label(p_unsafe: float, threshold: float) -> str:
    return "unsafe" if p_unsafe >= threshold else "safe"


def _top(category_probs: Mapping[str, float], n: int = 3) -> str:
    total = sum(max(v, 0.0) for v in category_probs.values()) or 1.0
    top = sorted(category_probs.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{code} {max(v, 0.0) / total:.2f}" for code, v in top)


def target_findings(target: TargetScore, *, threshold: float, policy: LoopPolicy) -> list[Finding]:
    """What is worth a person's look on one target (empty when nothing is)."""
    out: list[Finding] = []
    p = float(target.p_unsafe)
    label = guard_label(p, threshold)
    if target.human in ("safe", "unsafe") and target.human != label:
        out.append(Finding("disagree", target.where,
                           f"disagrees with consensus on {target.where}: {label} {p:.2f} vs human {target.human}",
                           policy.disagree_priority))
    if abs(p - threshold) < policy.margin:
        out.append(Finding("unsure", target.where,
                           f"unsure on {target.where}: P(unsafe) {p:.2f} near threshold {threshold:.2f}",
                           policy.unsure_priority))
    if label == "unsafe":
        h = normalised_entropy(target.category_probs.values())
        if h is not None and h >= policy.entropy:
            out.append(Finding("category", target.where,
                               f"unsure of the category on {target.where}: entropy {h:.2f} "
                               f"({_top(target.category_probs)})", policy.unsure_priority))
    return out


def item_raise(guard: str, findings: list[Finding]) -> tuple[int, str] | None:
    """One item's raise: (priority, reason), the reason naming the guard and every finding,
    disagreements first; None when there is nothing to raise.

    >>> item_raise("toxic v2", [Finding("unsure", "the prompt", "unsure on the prompt: P(unsafe) 0.48 near threshold 0.50", 5)])
    (5, 'guard toxic v2 unsure on the prompt: P(unsafe) 0.48 near threshold 0.50')
    """
    if not findings:
        return None
    order = {"disagree": 0, "unsure": 1, "category": 2}
    ordered = sorted(findings, key=lambda f: order.get(f.kind, 9))
    reason = f"guard {guard} " + "; ".join(f.text for f in ordered)
    if len(reason) > REASON_MAX:
        reason = reason[: REASON_MAX - 1] + "…"
    return max(f.priority for f in findings), reason


def response_names(positions: Mapping[int, int]) -> dict[int, str]:
    """response id -> "response A", "response B", ... by position (the letters the adjudication
    page shows), never the database id.

    >>> response_names({41: 1, 40: 0})
    {40: 'response A', 41: 'response B'}
    """
    out = {}
    for n, (rid, _pos) in enumerate(sorted(positions.items(), key=lambda kv: (kv[1], kv[0]))):
        out[rid] = f"response {response_letter(n)}"
    return out


# --- versions -------------------------------------------------------------------------------------


def binary_metrics(report: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The compared numbers of one report ({"binary": {...}}); an errored report has none."""
    binary = (report or {}).get("binary") or {}
    return {k: binary.get(k) for k in COMPARED_METRICS}


def metric_deltas(current: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """For each evaluation set both guards have (and their own validation splits, under
    ``"validation"``): every compared metric of ``current``, of ``previous``, and current minus
    previous (None where either is missing).

    >>> d = metric_deltas({"evaluations": {"x": {"binary": {"f1": 0.8}}}}, {"evaluations": {"x": {"binary": {"f1": 0.5}}}})
    >>> round(d["x"]["f1"]["delta"], 3), d["x"]["f1"]["better"]
    (0.3, True)
    """
    def sets(metrics: Mapping[str, Any]) -> dict[str, Any]:
        out = {"validation": metrics.get("validation")} if metrics.get("validation") else {}
        out.update({name: r for name, r in (metrics.get("evaluations") or {}).items() if not (r or {}).get("error")})
        return out

    mine, theirs = sets(current), sets(previous)
    result: dict[str, dict[str, Any]] = {}
    for name in sorted(set(mine) & set(theirs), key=lambda n: (n != "validation", n)):
        a, b = binary_metrics(mine[name]), binary_metrics(theirs[name])
        row: dict[str, Any] = {}
        for key in COMPARED_METRICS:
            x, y = a[key], b[key]
            delta = None if x is None or y is None else x - y
            better = None if delta is None or abs(delta) < 1e-12 else (delta < 0) == (key in LOWER_IS_BETTER)
            row[key] = {"current": x, "previous": y, "delta": delta, "better": better}
        row["n"] = {"current": ((mine[name] or {}).get("binary") or {}).get("n"),
                    "previous": ((theirs[name] or {}).get("binary") or {}).get("n")}
        result[name] = row
    return result
