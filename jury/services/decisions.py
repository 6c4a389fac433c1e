"""How a panel's verdicts on one item become one decision. Pure functions: no ORM, no Django.

The inputs are plain rows (:class:`VerdictRow`, built from ``Verdict`` rows by the caller) and the
run's frozen ``config`` (the dict ``jury_run_start`` stored on the run). The output is a
:class:`Decision`: the label, confidence, escalation and details that become a ``JuryDecision``,
plus the judgment the jury records (:class:`JuryJudgment`, or None for the principles task) and
the queue priority an escalated item asks for. Writing any of it is the caller's job
(``jury.services.finalize``).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from jury import aggregation

SEVERITY = {"safe": 0, "needs_caution": 1, "unsafe": 2}


@dataclass(frozen=True)
class VerdictRow:
    """One stored verdict, as the decision functions read it."""

    juror_id: int
    target: str
    order: int
    label: str
    probs: dict[str, float]
    category_probs: dict[str, float] = field(default_factory=dict)
    truncated: bool = False
    position_consistent: bool | None = None
    response_id: int | None = None
    response_b_id: int | None = None
    principle_id: int | None = None


@dataclass
class JuryJudgment:
    """What the jury records as its annotation of one item (safety or preference)."""

    prompt_label: str = ""
    prompt_categories: list[str] = field(default_factory=list)
    # (response id, label, categories), in the item's response order
    response_safety: list[tuple[int, str, list[str]]] = field(default_factory=list)
    ranking: list[list[int]] = field(default_factory=list)
    # pair_a_id, pair_b_id, pair_choice ("a" | "b" | "tie"), pair_strength
    pair: dict[str, Any] = field(default_factory=dict)
    with_taxonomy: bool = False


@dataclass
class Decision:
    label: str
    confidence: float
    escalated: bool
    reasons: list[str]
    details: dict[str, Any]
    judgment: JuryJudgment | None
    priority: int | None  # the queue priority an escalated item asks for; None when not escalated


def escalation_priority(config: dict, confidence: float) -> int:
    """The base escalation priority plus up to 10 for doubt.

    >>> escalation_priority({"escalation_priority": 10}, 0.75)
    12
    """
    return int(config.get("escalation_priority", 10)) + int(round((1.0 - confidence) * 10))


def outcome_json(o: aggregation.Outcome) -> dict:
    return {"label": o.label, "probs": {k: round(v, 6) for k, v in o.probs.items()}, "confidence": round(o.confidence, 6),
            "split": o.split, "escalated": o.escalated, "reasons": o.reasons, "votes": o.votes}


def group_by_target(verdicts: list[VerdictRow]) -> dict[str, list[VerdictRow]]:
    groups: dict[str, list[VerdictRow]] = defaultdict(list)
    for v in verdicts:
        groups[v.target].append(v)
    return groups


def _finish(config: dict, *, label: str, outcomes: dict[str, aggregation.Outcome], details: dict,
            judgment: JuryJudgment | None) -> Decision:
    confidence = min((o.confidence for o in outcomes.values()), default=1.0)
    escalated = any(o.escalated for o in outcomes.values())
    reasons = sorted({f"{target}: {r}" for target, o in outcomes.items() for r in o.reasons})
    return Decision(label=label, confidence=confidence, escalated=escalated, reasons=reasons, details=details,
                    judgment=judgment, priority=escalation_priority(config, confidence) if escalated else None)


def decide_safety(config: dict, *, item_id: int, response_ids: list[int], verdicts: list[VerdictRow],
                  weights: dict[int, float], names: dict[int, str]) -> Decision:
    """Per target (the prompt, each response): the rule's label; for "unsafe" the categories whose
    P(category | unsafe) reaches ``category_threshold`` (at least the likeliest). The decision's
    label is the worst label of the item."""
    label_fn = aggregation.safety_label_fn(config["caution_low"], config["caution_high"])
    outcomes: dict[str, aggregation.Outcome] = {}
    categories: dict[str, list[str]] = {}
    details: dict[str, Any] = {"targets": {}}
    for target, group in group_by_target(verdicts).items():
        votes = [aggregation.Vote(juror=names.get(v.juror_id, str(v.juror_id)), probs=v.probs, label=v.label,
                                  weight=weights.get(v.juror_id, 1.0)) for v in group]
        outcome = aggregation.aggregate(
            votes, rule=config["rule"], label_fn=label_fn, min_confidence=config["min_confidence"],
            escalate_on_split=config["escalate_on_split"],
        )
        outcomes[target] = outcome
        # P(category | unsafe) from the jurors' P(unsafe and category), weighted like the rule.
        use_w = config["rule"] == "weighted"
        total_w = sum(weights.get(v.juror_id, 1.0) if use_w else 1.0 for v in group)
        joint: dict[str, float] = defaultdict(float)
        for v in group:
            w = weights.get(v.juror_id, 1.0) if use_w else 1.0
            for code, p in (v.category_probs or {}).items():
                joint[code] += w * p / total_w
        p_unsafe = outcome.probs.get("unsafe", 0.0)
        conditional = {code: (p / p_unsafe if p_unsafe else 0.0) for code, p in joint.items()}
        named: list[str] = []
        if outcome.label == "unsafe" and conditional:
            named = [c for c, p in sorted(conditional.items(), key=lambda kv: -kv[1]) if p >= config["category_threshold"]]
            named = named or [max(conditional, key=lambda c: conditional[c])]
        categories[target] = named
        details["targets"][target] = outcome_json(outcome) | {
            "category_probs": {c: round(p, 6) for c, p in joint.items()}, "categories": named,
            "truncated": any(v.truncated for v in group),
        }
    prompt_key = f"i{item_id}:prompt"
    judgment = JuryJudgment(
        prompt_label=outcomes[prompt_key].label if prompt_key in outcomes else "",
        prompt_categories=categories.get(prompt_key, []), with_taxonomy=True,
        response_safety=[(rid, outcomes[f"i{item_id}:r{rid}"].label, categories.get(f"i{item_id}:r{rid}", []))
                         for rid in response_ids if f"i{item_id}:r{rid}" in outcomes],
    )
    worst = max((o.label for o in outcomes.values()), key=lambda label: SEVERITY.get(label, 0))
    return _finish(config, label=worst, outcomes=outcomes, details=details, judgment=judgment)


def pair_votes(group: list[VerdictRow], weights: dict[int, float], names: dict[int, str],
               labels: tuple[str, ...]) -> list[aggregation.Vote]:
    """One vote per juror from both orders: probabilities mapped to the canonical (a, b) frame and
    averaged over the two orders (which cancels a pure position bias)."""
    by_juror: dict[int, list[VerdictRow]] = defaultdict(list)
    for v in group:
        by_juror[v.juror_id].append(v)
    votes = []
    for juror_id, vs in by_juror.items():
        acc: dict[str, float] = defaultdict(float)
        for v in vs:
            pa, pb = (v.probs["A"], v.probs["B"]) if v.order == 0 else (v.probs["B"], v.probs["A"])
            acc["a"] += pa / len(vs)
            acc["b"] += pb / len(vs)
            if "NA" in labels:
                acc["na"] += v.probs.get("NA", 0.0) / len(vs)
        probs = dict(acc)
        if "NA" not in labels:
            total = probs["a"] + probs["b"]
            probs = {"a": probs["a"] / total, "b": probs["b"] / total}
        consistent = vs[0].position_consistent if len(vs) > 1 else None
        votes.append(aggregation.Vote(juror=names.get(juror_id, str(juror_id)), probs=probs,
                                      label=aggregation.argmax_label(probs), weight=weights.get(juror_id, 1.0),
                                      position_consistent=consistent))
    return votes


def pair_choice(p_first: float) -> tuple[str, int]:
    """(choice, strength) of a two-response item from P(first better).

    >>> pair_choice(0.52), pair_choice(0.9), pair_choice(0.25), pair_choice(0.6)
    (('tie', 0), ('a', 3), ('b', 2), ('a', 1))
    """
    if abs(p_first - 0.5) < 0.05:
        return "tie", 0
    top = max(p_first, 1 - p_first)
    strength = 3 if top >= 0.85 else (2 if top >= 0.7 else 1)
    return ("a" if p_first > 0.5 else "b"), strength


def decide_preference(config: dict, *, item_id: int, response_ids: list[int], verdicts: list[VerdictRow],
                      weights: dict[int, float], names: dict[int, str]) -> Decision:
    """Per pair: the rule over both orders; a ranking from the pairs; for two responses also the
    pair choice and strength. The decision's label is the winner (ids joined by commas on a tie)."""
    outcomes: dict[str, aggregation.Outcome] = {}
    p_first: dict[tuple[int, int], float] = {}
    details: dict[str, Any] = {"pairs": {}}
    for target, group in group_by_target(verdicts).items():
        votes = pair_votes(group, weights, names, ("A", "B"))
        outcome = aggregation.aggregate(
            votes, rule=config["rule"], label_fn=aggregation.pair_label_fn(config["threshold"]),
            min_confidence=config["min_confidence"], escalate_on_split=config["escalate_on_split"],
        )
        outcomes[target] = outcome
        a, b = group[0].response_id, group[0].response_b_id
        assert a is not None and b is not None
        p_first[(a, b)] = outcome.probs["a"]
        details["pairs"][target] = outcome_json(outcome) | {
            "a": a, "b": b, "position_consistent": {vote.juror: vote.position_consistent for vote in votes},
        }
    ranking = aggregation.ranking_from_pairs(response_ids, p_first)
    details["ranking"] = ranking
    pair: dict[str, Any] = {}
    if len(response_ids) == 2 and p_first:
        (a, b), p = next(iter(p_first.items()))
        choice, strength = pair_choice(p)
        pair = {"pair_a_id": a, "pair_b_id": b, "pair_choice": choice, "pair_strength": strength}
    winner = ",".join(str(r) for r in ranking[0]) if ranking else ""
    return _finish(config, label=winner, outcomes=outcomes, details=details,
                   judgment=JuryJudgment(ranking=ranking, pair=pair))


def decide_principles(config: dict, *, item_id: int, response_ids: list[int], verdicts: list[VerdictRow],
                      weights: dict[int, float], names: dict[int, str]) -> Decision:
    """Per principle and pair: the panel's prob_A / prob_B / prob_NA (canonical: A is the pair's
    first response, as in Buyl et al. with order 0) and p_i = sign(prob_A - prob_B), None when NA
    wins or on a tie. The decision's label is the row class: consensus, conflict or indifference.
    No judgment is recorded for this task."""
    outcomes: dict[str, aggregation.Outcome] = {}
    details: dict[str, Any] = {"principles": {}}
    signs: dict[str, list[int | None]] = defaultdict(list)
    codes = {pid: code for pid, code, _ in config["principles"]}
    for target, group in group_by_target(verdicts).items():
        votes = pair_votes(group, weights, names, ("A", "B", "NA"))
        outcome = aggregation.aggregate(
            votes, rule=config["rule"], min_confidence=config["min_confidence"],
            escalate_on_split=config["escalate_on_split"],
        )
        outcomes[target] = outcome
        pa, pb, pna = outcome.probs.get("a", 0.0), outcome.probs.get("b", 0.0), outcome.probs.get("na", 0.0)
        p_i = aggregation.principle_preference(pa, pb, pna)
        pair = f"{group[0].response_id}-{group[0].response_b_id}"
        signs[pair].append(p_i)
        details["principles"].setdefault(codes.get(group[0].principle_id, str(group[0].principle_id)), {})[pair] = {
            "prob_A": round(pa, 6), "prob_B": round(pb, 6), "prob_NA": round(pna, 6), "p": p_i,
            "votes": outcome.votes, "position_consistent": {v.juror: v.position_consistent for v in votes},
        }
    classes = {pair: row_class(values) for pair, values in signs.items()}
    details["row_class"] = classes
    label = next(iter(classes.values())) if len(classes) == 1 else ""
    return _finish(config, label=label, outcomes=outcomes, details=details, judgment=None)


def row_class(signs: list[int | None]) -> str:
    """consensus (every known p_i agrees), conflict (some +1 and some -1) or indifference (none known).

    >>> row_class([1, 1, None]), row_class([1, -1]), row_class([None, None])
    ('consensus', 'conflict', 'indifference')
    """
    known = {v for v in signs if v is not None}
    return "indifference" if not known else ("conflict" if known == {1, -1} else "consensus")


DECIDERS = {"safety": decide_safety, "preference": decide_preference, "principles": decide_principles}


def decide(task: str, config: dict, *, item_id: int, response_ids: list[int], verdicts: list[VerdictRow]) -> Decision:
    """The decision of one item for ``task`` under the run's ``config`` (weights and names from its jurors)."""
    weights = {m["id"]: m["weight"] for m in config["jurors"]}
    names = {m["id"]: m["name"] for m in config["jurors"]}
    return DECIDERS[task](config, item_id=item_id, response_ids=response_ids, verdicts=verdicts,
                          weights=weights, names=names)
