"""The project metrics report: a project's ratings (:class:`~annotation.metrics.selectors.ProjectRatings`)
through the pure functions of :mod:`annotation.metrics.agreement` into one JSON-ready dict. No
database access here: :func:`annotation.metrics.services.project_metrics` reads and caches.

Who counts where:

- the agreement figures (alpha, Fleiss' kappa, percent agreement, per category, rankings and
  choices) are over the *people*: workbench annotators and imported raters. The jury, adjudications
  and the consensus are not independent raters of the same kind, so they do not enter these;
- the pairwise matrices have a row for every rater: each person, each imported rater, each juror
  and guard of a jury run (answering alone), the jury's decision, the adjudication and the consensus (the people's majority per unit, ties left out; a person
  is part of the consensus they are compared with, which flatters them: the per-annotator table's
  leave-one-out agreement does not);
- the per-annotator table is over the people's safety labels, prompts and responses together
  (each a unit): leave-one-out agreement, accuracy on gold units, label distribution against the
  project's; for workbench people also items per hour (annotations over their summed time on
  task), median time per item, and skip and flag rates (of their items that ended submitted,
  skipped or flagged).

- ``discretion``: the discretion metrics (:mod:`annotation.metrics.discretion`) on the pairs that
  have the jury's principle-specific preferences p_i (its principles task): the row classes, for
  every rater who judged those pairs (people, each juror and guard, the jury's decision, and the
  people's majority as ``consensus`` when two or more people judged) DA, PS with n_ij, w* and its
  ranks, DD between every pair with bootstrap mean and SD (``n_boot`` resamples); the reference of
  DD is the consensus, else the first person. ``conflict_capture``: how often each workbench person
  marked "principles conflicted", against the rows the jury's p_i put in Conflict.

Estimates are ``{"value", "low", "high", "n_items"}`` (a bootstrap 95% interval that resamples
units); NaN is ``null``.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np

from annotation.metrics import agreement as ag
from annotation.metrics import discretion as dsc
from annotation.metrics.selectors import (
    ADJUDICATION,
    CONSENSUS,
    GUARD,
    HUMAN,
    IMPORT,
    JUROR,
    JURY,
    PEOPLE,
    DiscretionInputs,
    ProjectRatings,
    Row,
)
from annotation.models import Assignment, Project

MACHINE_NOTE = (
    "Jurors and guards answer alone in their rows (the jury run's rule over that one juror); they and the "
    "jury are compared with people in the matrices but never enter the people's figures or the consensus."
)
KIND_ORDER = {HUMAN: 0, IMPORT: 1, JUROR: 2, GUARD: 3, JURY: 4, ADJUDICATION: 5, CONSENSUS: 6}


def _estimates(figures: dict[str, ag.Estimate]) -> dict[str, dict[str, Any]]:
    return {name: est.as_dict() for name, est in figures.items()}


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _matrix(matrix: ag.PairMatrix) -> dict[str, Any]:
    """Rows and columns in ``raters`` order; ``null`` where undefined or nothing is shared."""
    out: dict[str, Any] = {"raters": [str(r) for r in matrix.raters]}
    for name, values in matrix.values.items():
        out[name] = [[_num(float(v)) for v in row] for row in values]
    out["n_shared"] = [[int(n) for n in row] for row in matrix.n_shared]
    return out


def _people(rows: Iterable[Row], people: set[str]) -> list[Row]:
    return [row for row in rows if row[0] in people]


def _ordered(raters: dict[str, str], present: set[str]) -> list[str]:
    return sorted(present, key=lambda r: (KIND_ORDER.get(raters.get(r, CONSENSUS), 9), r))


def _label_block(
    rows: list[Row], categories: list[Row], *, ratings: ProjectRatings, people: set[str], n_boot: int, seed: int
) -> dict[str, Any]:
    """Safety labels of one kind of unit (prompts or responses)."""
    mine = _people(rows, people)
    raters = _ordered(ratings.raters, {r for r, _, _ in rows})
    block: dict[str, Any] = {
        "n_units": len({u for _, u, _ in rows}),
        "n_ratings": len(rows),
        "raters": raters,
    }
    if mine:
        table = ag.LabelTable.from_rows(mine, ag.SAFETY_LABELS)
        block["agreement"] = _estimates(ag.label_agreement(table, ordinal=True, n_boot=n_boot, seed=seed))
        # Categories nobody marked carry no information (agreement is undefined): left out, in the
        # taxonomy's order (codes outside it after, as category_agreement orders them).
        cat_rows = _people(categories, people)
        marked = {code for _, _, codes in cat_rows for code in codes}
        per_category = ag.category_agreement(
            cat_rows, [c for c in ratings.category_order if c in marked], n_boot=n_boot, seed=seed
        )
        block["categories"] = {
            str(code): _estimates(figs) for code, figs in per_category.items() if figs["present_share"].value > 0
        }
        consensus = ag.consensus_rows(table, CONSENSUS)
    else:
        block["agreement"], block["categories"], consensus = {}, {}, []
    if rows:
        everyone = ag.LabelTable.from_rows(list(rows) + consensus, ag.SAFETY_LABELS, raters=raters + [CONSENSUS])
        block["matrix"] = _matrix(ag.agreement_matrix(everyone))
    else:
        block["matrix"] = _matrix(ag.PairMatrix([], {"kappa": _empty(), "percent_agreement": _empty()}, _empty(int)))
    return block


def _empty(dtype: type = float) -> np.ndarray:
    return np.zeros((0, 0), dtype=dtype)


def _ranking_block(ratings: ProjectRatings, people: set[str], n_boot: int, seed: int) -> dict[str, Any]:
    rows = ratings.rankings
    raters = _ordered(ratings.raters, {r for r, _, _ in rows})
    mine = _people(rows, people)
    block: dict[str, Any] = {"n_items": len({u for _, u, _ in rows}), "n_ratings": len(rows), "raters": raters}
    everyone = ag.RankingTable.from_rows(rows, raters) if rows else None
    # Parsing rankings is the slow part: when only people ranked, one table serves both (the rater
    # order of a table changes the matrix's order only, not the figures).
    people_table = everyone if len(mine) == len(rows) else ag.RankingTable.from_rows(mine)
    block["agreement"] = (
        _estimates(ag.ranking_agreement(people_table, n_boot=n_boot, seed=seed)) if mine and people_table else {}
    )
    if everyone is not None:
        block["matrix"] = _matrix(ag.kendall_tau_matrix(everyone))
    else:
        block["matrix"] = _matrix(ag.PairMatrix([], {"kendall_tau_b": _empty()}, _empty(int)))
    return block


def _choice_block(ratings: ProjectRatings, people: set[str], n_boot: int, seed: int) -> dict[str, Any]:
    rows = ratings.choices
    raters = _ordered(ratings.raters, {r for r, _, _ in rows})
    mine = _people(rows, people)
    block: dict[str, Any] = {"n_pairs": len({u for _, u, _ in rows}), "n_ratings": len(rows), "raters": raters}
    return block | _nominal_agreement(rows, mine, raters, ag.PAIR_CHOICES, ag.choice_agreement, n_boot, seed)


def _edit_review_block(ratings: ProjectRatings, people: set[str], n_boot: int, seed: int) -> dict[str, Any]:
    """Edit reviews (issue 11): agreement of the people's verdicts (accept / reject / fix, nominal)
    on the review items, the verdicts counted, and the rater matrix with the consensus."""
    rows = ratings.edit_verdicts
    raters = _ordered(ratings.raters, {r for r, _, _ in rows})
    mine = _people(rows, people)
    block: dict[str, Any] = {
        "n_items": len({u for _, u, _ in rows}), "n_ratings": len(rows), "raters": raters,
        "verdicts": {v: sum(1 for _, _, x in mine if x == v) for v in ag.EDIT_VERDICTS},
    }
    return block | _nominal_agreement(rows, mine, raters, ag.EDIT_VERDICTS, ag.verdict_agreement, n_boot, seed)


def _nominal_agreement(rows, mine, raters: list[str], labels, agreement_fn, n_boot: int, seed: int) -> dict[str, Any]:
    """What the pairwise-choice and edit-verdict blocks share: the people's agreement (with intervals)
    and the rater matrix with the people's consensus as a row."""
    consensus: list[ag.Rating] = []
    out: dict[str, Any] = {"agreement": {}}
    if mine:
        out["agreement"] = _estimates(agreement_fn(mine, n_boot=n_boot, seed=seed))
        consensus = ag.consensus_rows(ag.LabelTable.from_rows(mine, labels), CONSENSUS)
    if rows:
        table = ag.LabelTable.from_rows(list(rows) + consensus, labels, raters=raters + [CONSENSUS])
        out["matrix"] = _matrix(ag.agreement_matrix(table))
    else:
        out["matrix"] = _matrix(ag.PairMatrix([], {"kappa": _empty(), "percent_agreement": _empty()}, _empty(int)))
    return out


def _annotator_table(ratings: ProjectRatings, people: set[str]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    safety = _people(ratings.prompt_labels, people) + _people(ratings.response_labels, people)
    by_rater: dict[Hashable, ag.AnnotatorAgreement] = {}
    distribution: dict[str, float] = {}
    if safety:
        table = ag.LabelTable.from_rows(safety, ag.SAFETY_LABELS)
        by_rater = {a.rater: a for a in ag.annotator_agreement(table, ratings.gold)}
        distribution = {str(k): v for k, v in ag.project_distribution(table).items()}
    workbench = set(ratings.durations_ms) | set(ratings.outcomes)
    rows = []
    for rater in _ordered(ratings.raters | dict.fromkeys(workbench - set(ratings.raters), HUMAN), people | workbench):
        kind = ratings.raters.get(rater, HUMAN)
        figures = by_rater.get(rater)
        row: dict[str, Any] = {"rater": rater, "kind": kind}
        if figures is not None:
            row.update(figures.as_dict())
        else:
            row.update({"n_items": 0, "loo_agreement": None, "loo_items": 0,
                        "distribution": dict.fromkeys(ag.SAFETY_LABELS), "distance": None,
                        "gold_accuracy": None, "gold_items": 0})
        row["rater"] = rater
        durations = ratings.durations_ms.get(rater, [])
        total_hours = sum(durations) / 3_600_000
        row["timed_items"] = len(durations)
        row["items_per_hour"] = _num(len(durations) / total_hours) if total_hours > 0 else None
        row["median_seconds_per_item"] = statistics.median(durations) / 1000 if durations else None
        outcomes = ratings.outcomes.get(rater, {})
        done = outcomes.get(Assignment.Status.DONE, 0)
        skipped = outcomes.get(Assignment.Status.SKIPPED, 0)
        flagged = outcomes.get(Assignment.Status.FLAGGED, 0)
        ended = done + skipped + flagged
        row.update({
            "submitted": done, "skipped": skipped, "flagged": flagged,
            "skip_rate": skipped / ended if ended else None,
            "flag_rate": flagged / ended if ended else None,
        })
        rows.append(row)
    return rows, distribution


def metrics_report(project: Project, ratings: ProjectRatings, *, n_boot: int, seed: int) -> dict[str, Any]:
    """Every figure of the project from its ratings (see the module docstring)."""
    with ag.shared_resamples():  # one draw of the resample weights per item count, not one per figure
        return _report(project, ratings, n_boot=n_boot, seed=seed)


def _report(project: Project, ratings: ProjectRatings, *, n_boot: int, seed: int) -> dict[str, Any]:
    people = ratings.kinds(*PEOPLE)
    return {
        "project": project.slug,
        "mode": project.mode,
        "n_boot": n_boot,
        "raters": [{"id": r, "kind": ratings.raters[r]} for r in _ordered(ratings.raters, set(ratings.raters))]
        + [{"id": CONSENSUS, "kind": CONSENSUS}],
        "prompt_safety": _label_block(
            ratings.prompt_labels, ratings.prompt_categories, ratings=ratings, people=people, n_boot=n_boot, seed=seed
        ),
        "response_safety": _label_block(
            ratings.response_labels, ratings.response_categories, ratings=ratings, people=people, n_boot=n_boot,
            seed=seed,
        ),
        "ranking": _ranking_block(ratings, people, n_boot, seed),
        "choice": _choice_block(ratings, people, n_boot, seed),
        "edit_review": _edit_review_block(ratings, people, n_boot, seed),
        "annotators": (table := _annotator_table(ratings, people))[0],
        "project_distribution": table[1],
        "gold_units": len(ratings.gold),
        "disputed": disputed_items(ratings, people),
        "discretion": discretion_block(ratings.discretion, n_boot=n_boot, seed=seed),
        "notes": [MACHINE_NOTE],
    }


DISPUTED_LIMIT = 20


def disputed_items(ratings: ProjectRatings, people: set[str], limit: int = DISPUTED_LIMIT) -> list[dict[str, Any]]:
    """The items the people disagree on most: per item, over its prompt label and its responses'
    labels (each a unit with two or more people), the mean share of disagreeing pairs of labels
    (1 - P_i of Fleiss); the ``limit`` highest, ties broken by more labels then item id.
    ``labels`` counts the people's labels of the item's units by label."""
    units: dict[Hashable, dict[str, int]] = {}
    item_of: dict[Hashable, Any] = {}
    for rows in (ratings.prompt_labels, ratings.response_labels):
        latest = {(r, u): v for r, u, v in rows if r in people}
        for (_, unit), label in latest.items():
            counts = units.setdefault(unit, {})
            counts[label] = counts.get(label, 0) + 1
            item_of[unit] = unit[0] if isinstance(unit, tuple) else unit
    per_item: dict[Any, list[float]] = {}
    labels: dict[Any, dict[str, int]] = {}
    for unit, counts in units.items():
        m = sum(counts.values())
        if m < 2:
            continue
        agree = sum(c * (c - 1) for c in counts.values()) / (m * (m - 1))
        item = item_of[unit]
        per_item.setdefault(item, []).append(1.0 - agree)
        mine = labels.setdefault(item, {})
        for label, c in counts.items():
            mine[label] = mine.get(label, 0) + c
    ranked = sorted(
        per_item, key=lambda i: (-sum(per_item[i]) / len(per_item[i]), -sum(labels[i].values()), str(i))
    )
    return [
        {"item": item, "disagreement": sum(per_item[item]) / len(per_item[item]), "units": len(per_item[item]),
         "labels": {k: labels[item][k] for k in ag.SAFETY_LABELS if k in labels[item]}
         | {k: v for k, v in labels[item].items() if k not in ag.SAFETY_LABELS},
         "n_labels": sum(labels[item].values())}
        for item in ranked[:limit] if sum(per_item[item]) > 0
    ]


def _people_majority(inputs: DiscretionInputs, people: list[str]) -> list[float | None]:
    """The people's majority sign on each row (None on a tie or when nobody judged it)."""
    out: list[float | None] = []
    for n in range(len(inputs.rows)):
        total = sum(v for r in people if (v := inputs.annotators[r][n]) is not None)
        out.append(None if total == 0 else (1.0 if total > 0 else -1.0))
    return out


def discretion_block(inputs: DiscretionInputs | None, *, n_boot: int, seed: int) -> dict[str, Any]:
    """The ``discretion`` section of the report (see the module docstring); with ``n_rows`` 0 and
    nothing else computed when the project has no p_i."""
    empty: dict[str, Any] = {
        "jury": "", "juries": [], "n_rows": 0, "principles": [], "classes": dict.fromkeys(dsc.CLASSES, 0),
        "annotators": [], "kinds": {}, "reference": None, "n_boot": n_boot, "annotator": {}, "dd": [],
        "dd_boot_mean": None, "dd_boot_sd": None, "dd_reference": {}, "conflict_capture": [],
    }
    if inputs is None or not inputs.rows:
        return empty | ({"juries": inputs.juries} if inputs is not None else {})
    kinds = dict(inputs.kinds)
    order = sorted(inputs.annotators, key=lambda r: (KIND_ORDER.get(kinds.get(r, CONSENSUS), 9), r))
    prefs: dict[str, Any] = {r: np.array([np.nan if v is None else v for v in inputs.annotators[r]]) for r in order}
    people = [r for r in order if kinds.get(r) in PEOPLE]
    if len(people) > 1:
        prefs[CONSENSUS] = np.array([np.nan if v is None else v for v in _people_majority(inputs, people)])
        kinds[CONSENSUS] = CONSENSUS
        order.append(CONSENSUS)
    reference = CONSENSUS if CONSENSUS in prefs else (people[0] if people else (order[0] if order else None))
    p = np.array([[np.nan if v is None else v for v in row] for row in inputs.p], dtype=np.float64)
    report = dsc.discretion(p, {r: prefs[r] for r in order}, principles=inputs.principles, reference=reference,
                            n_boot=n_boot, seed=seed)
    out = report.as_dict()
    for name in order:
        valid = np.isfinite(prefs[name]) & (prefs[name] != 0)
        out["annotator"][name]["n_rows"] = int(valid.sum())
    out["dd_reference"] = {str(k): v for k, v in report.dd_reference().items()}
    out["jury"], out["juries"] = inputs.jury, inputs.juries
    out["kinds"] = {r: kinds.get(r, HUMAN) for r in order}
    captures = dsc.conflict_capture(p, inputs.marks) if inputs.marks else []
    out["conflict_capture"] = [
        {"annotator": str(c.annotator), "n_rows": c.n_rows, "n_conflict_rows": c.n_conflict_rows,
         "marked_share": _num(c.marked_share), "recall": _num(c.recall), "precision": _num(c.precision)}
        for c in sorted(captures, key=lambda c: str(c.annotator))
    ]
    return empty | out


