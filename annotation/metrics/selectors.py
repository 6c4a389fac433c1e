"""Reads that gather a project's ratings into the long tables of :mod:`annotation.metrics.agreement`.

A handful of queries per project whatever its size (``values_list`` over current annotations, their
response labels, gold items and the workbench's assignment counts); no query per row.

Rater ids (readable and stable, the rows of every matrix):

- a person who judged in the workbench: their username (``"alice"``); a username that equals one of
  the reserved ids below is written ``"user:<username>"`` (a colon is not allowed in usernames);
- an imported rater: ``"import:<rater>"`` (``Annotation.rater``, the id from the file); an imported
  label without a rater id: ``"import"``;
- the jury: ``"jury:<name>"`` (the jury's name, ``Annotation.source_detail``), or ``"jury"`` when
  unnamed; a second run of the same jury on an item counts as that jury's newer answer;
- one juror of a jury run, answering alone (``Annotation(source="juror")``): ``"juror:<name>"``
  (``source_detail``: the juror's name and model); a guard model on a panel: ``"guard:<name>"``.
  A later run of the same juror on an item counts as its newer answer, as for the jury;
- an adjudication: ``"adjudication"``;
- the consensus (added by the service, not read here): ``"consensus"``, the majority label of the
  people (workbench and imported raters) on each unit, ties left out.

Jurors and guards are machine raters: rows of the matrices, never part of the people's figures or
the consensus. Their records are written by the jury's finalisation through
``annotation.services.machine_rater_record`` (``annotation`` imports neither ``jury`` nor ``exports``).

:func:`discretion_inputs` gathers what the discretion metrics read: the principle-specific
preferences p_i (``PrinciplePreference``) and every rater's pairwise preference on the same pairs.

Units: a prompt's label is rated on the item id; a response's label on ``(item_id, response_id)``;
a pairwise choice on ``(item_id, low_response_id, high_response_id)`` with the choice oriented so
``"a"`` is always the response with the lower id; an edit review's verdict (accept / reject / fix,
issue 11) on the review item's id.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Max, Min, OuterRef, Subquery

from annotation.models import (
    Annotation,
    Assignment,
    HazardCategory,
    Item,
    Principle,
    PrinciplePreference,
    Project,
    ResponseSafety,
)

HUMAN, IMPORT, JURY, ADJUDICATION, CONSENSUS = "human", "import", "jury", "adjudication", "consensus"
JUROR, GUARD = "juror", "guard"
RESERVED_IDS = frozenset({IMPORT, JURY, ADJUDICATION, CONSENSUS, JUROR, GUARD})
# Machine raters: rows of the matrices, never people.
MACHINES = frozenset({JURY, JUROR, GUARD})
# Kinds whose labels count as people's judgments (the agreement figures and the consensus).
PEOPLE = frozenset({HUMAN, IMPORT})

Row = tuple[str, Hashable, Any]


def rater_id(source: str, username: str | None, rater: str, source_detail: str) -> tuple[str, str]:
    """The readable rater id and its kind for one annotation's fields."""
    if source == Annotation.Source.IMPORT:
        return (f"import:{rater}" if rater else IMPORT), IMPORT
    if source == Annotation.Source.JURY:
        return (f"jury:{source_detail}" if source_detail else JURY), JURY
    if source in (Annotation.Source.JUROR, Annotation.Source.GUARD):
        name = source_detail or rater.partition(":")[2] or rater
        return (f"{source}:{name}" if name else str(source)), str(source)
    if source == Annotation.Source.ADJUDICATION:
        return ADJUDICATION, ADJUDICATION
    name = username or "unknown"
    return (f"user:{name}" if name in RESERVED_IDS else name), HUMAN


@dataclass
class ProjectRatings:
    """A project's current judgments as long tables of ``(rater, unit, value)`` rows (in annotation
    id order, so a rater's newer answer on a unit comes last and wins)."""

    raters: dict[str, str] = field(default_factory=dict)  # rater id -> kind, in first-seen order
    prompt_labels: list[Row] = field(default_factory=list)
    prompt_categories: list[Row] = field(default_factory=list)
    response_labels: list[Row] = field(default_factory=list)
    response_categories: list[Row] = field(default_factory=list)
    rankings: list[Row] = field(default_factory=list)
    choices: list[Row] = field(default_factory=list)
    edit_verdicts: list[Row] = field(default_factory=list)  # edit_review items: accept / reject / fix
    # Gold answers per unit (prompt: item id; response: (item id, response id)).
    gold: dict[Hashable, str] = field(default_factory=dict)
    # Workbench people only: durations (ms) of their current annotations; assignment outcomes.
    durations_ms: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    outcomes: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    category_order: list[str] = field(default_factory=list)
    # The discretion inputs (p_i and every rater's preference on the same pairs); None when not read.
    discretion: DiscretionInputs | None = None

    def kinds(self, *kinds: str) -> set[str]:
        return {r for r, k in self.raters.items() if k in kinds}


def _gold_units(item_id: int, answer: Any, positions: dict[tuple[int, int], int]) -> dict[Hashable, str]:
    """The safety labels a gold answer states. Read shapes: a label string (the prompt's label), or
    a dict with ``prompt_label`` (or ``label``) and ``responses`` / ``response_labels`` mapping a
    response's 0-based position (as text or number) to its label (or to ``{"label": ...}``).
    Anything else states no label."""
    out: dict[Hashable, str] = {}
    if isinstance(answer, str):
        answer = {"prompt_label": answer}
    if not isinstance(answer, dict):
        return out
    label = answer.get("prompt_label", answer.get("label"))
    if isinstance(label, str) and label:
        out[item_id] = label
    responses = answer.get("response_labels", answer.get("responses"))
    if isinstance(responses, dict):
        for key, value in responses.items():
            if isinstance(value, dict):
                value = value.get("label")
            if not isinstance(value, str):
                continue
            try:
                number = int(key)
            except (TypeError, ValueError):
                continue
            response_id = positions.get((item_id, number))
            if response_id is not None:
                out[(item_id, response_id)] = value
    return out


def project_ratings(*, project: Project, with_discretion: bool = True) -> ProjectRatings:
    """Everything the project metrics read, in six queries: current annotations, their response
    labels, the taxonomy's category order, gold items (with their responses' positions) and the
    workbench assignment outcomes per person; with ``with_discretion`` also
    :func:`discretion_inputs` (one query when the project has no p_i, four when it has)."""
    out = ProjectRatings()
    current = Annotation.objects.filter(project=project).current()
    by_annotation: dict[int, str] = {}
    for (pk, item_id, source, username, rater, detail, label, categories, ranking, pair_a, pair_b, choice,
         duration, verdict) in current.order_by("id").values_list(
            "id", "item_id", "source", "annotator__username", "rater", "source_detail", "prompt_label",
            "prompt_categories", "ranking", "pair_a_id", "pair_b_id", "pair_choice", "duration_ms", "edit_verdict",
    ).iterator(chunk_size=5000):
        rid, kind = rater_id(source, username, rater, detail)
        out.raters.setdefault(rid, kind)
        by_annotation[pk] = rid
        if label:
            out.prompt_labels.append((rid, item_id, label))
            out.prompt_categories.append((rid, item_id, tuple(categories or ())))
        if ranking:
            out.rankings.append((rid, item_id, ranking))
        if choice and pair_a is not None and pair_b is not None:
            if pair_a > pair_b:
                pair_a, pair_b = pair_b, pair_a
                choice = {"a": "b", "b": "a"}.get(choice, choice)
            out.choices.append((rid, (item_id, pair_a, pair_b), choice))
        if verdict:
            out.edit_verdicts.append((rid, item_id, verdict))
        if kind == HUMAN and duration is not None:
            out.durations_ms[rid].append(int(duration))
    labels = (
        ResponseSafety.objects.filter(annotation__in=current)
        .order_by("annotation_id", "response_id")
        .values_list("annotation_id", "annotation__item_id", "response_id", "label", "categories")
    )
    for annotation_id, item_id, response_id, label, categories in labels.iterator(chunk_size=5000):
        owner = by_annotation.get(annotation_id)
        if owner is None:  # a label written after the first query read its annotations
            continue
        unit = (item_id, response_id)
        out.response_labels.append((owner, unit, label))
        out.response_categories.append((owner, unit, tuple(categories or ())))
    out.category_order = list(
        HazardCategory.objects.filter(version_id=project.taxonomy_version_id)
        .order_by("order", "code").values_list("code", flat=True)
    )
    gold = list(Item.objects.filter(project=project, is_gold=True).values_list("id", "gold_answer"))
    if gold:
        positions = {
            (item_id, position): response_id
            for item_id, position, response_id in Item.objects.filter(pk__in=[g for g, _ in gold]).values_list(
                "id", "responses__position", "responses__id"
            )
            if response_id is not None
        }
        for item_id, answer in gold:
            out.gold.update(_gold_units(item_id, answer, positions))
    finished = [Assignment.Status.DONE, Assignment.Status.SKIPPED, Assignment.Status.FLAGGED]
    for username, status, n in (
        Assignment.objects.filter(project=project, status__in=finished)
        .values_list("annotator__username", "status").annotate(n=Count("pk")).order_by()
    ):
        rid, _ = rater_id(Annotation.Source.HUMAN, username, "", "")
        out.outcomes[rid][status] = n
    if with_discretion:
        out.discretion = discretion_inputs(project=project)
    return out


def _count(qs) -> Subquery:
    return Subquery(qs.order_by().values("project").annotate(n=Count("pk")).values("n")[:1])


def project_ratings_version(*, project: Project) -> tuple[int, int, int, int, int]:
    """What the project's metrics depend on, read in one query: the newest annotation id
    (annotations are append-only, so every new judgment, correction or undo raises it), the numbers
    of skipped and flagged assignments (a skip or a flag writes no annotation), of gold items, and
    the newest principle preference id (a principles run writes p_i and no annotation).
    The cache key of :func:`annotation.metrics.services.project_metrics`. (An edit of a gold item's
    answer that keeps the number of gold items is not seen: the cached figures stay until the next
    judgment.)"""
    row = Project.objects.filter(pk=project.pk).values_list(
        Subquery(Annotation.objects.filter(project=OuterRef("pk")).order_by("-id").values("id")[:1]),
        _count(Assignment.objects.filter(project=OuterRef("pk"), status=Assignment.Status.SKIPPED)),
        _count(Assignment.objects.filter(project=OuterRef("pk"), status=Assignment.Status.FLAGGED)),
        _count(Item.objects.filter(project=OuterRef("pk"), is_gold=True)),
        Subquery(PrinciplePreference.objects.filter(project=OuterRef("pk")).order_by("-id").values("id")[:1]),
    ).first()
    if row is None:
        return (0, 0, 0, 0, 0)
    newest, skipped, flagged, gold, preference = row
    return (newest or 0, skipped or 0, flagged or 0, gold or 0, preference or 0)


# --- Discretion ---------------------------------------------------------------------------------


@dataclass
class DiscretionInputs:
    """What the discretion metrics (:mod:`annotation.metrics.discretion`) read for one project.

    ``rows``: the pairs that have the jury's p_i, as ``(item id, low response id, high response id)``;
    every sign below is oriented on that pair: +1 prefers the response with the lower id, -1 the
    other, ``None`` no preference (a tie, NA, not asked, not judged).

    - ``p``: rows x ``principles`` (principle codes, in the set's order), the panel's p_i of
      ``jury`` (``"jury:<name>"``; the newest run's answer where a jury ran twice);
    - ``prob_a``: the same cells' P(the principle prefers the low-id response), for display;
    - ``annotators``: rater id -> one sign per row, for every rater who judged one of the pairs (a
      pairwise choice on it, or a ranking that places both responses): people, imported raters,
      each juror and guard, the jury's decision, adjudications; ``kinds``: rater id -> kind;
    - ``marks``: ``(rater id, row index, marked "principles conflicted")`` per workbench person's
      current judgment of an item that has rows (each of the item's rows).
    """

    jury: str = ""
    juries: list[str] = field(default_factory=list)
    rows: list[tuple[int, int, int]] = field(default_factory=list)
    principles: list[str] = field(default_factory=list)
    p: list[list[float | None]] = field(default_factory=list)
    prob_a: list[list[float | None]] = field(default_factory=list)
    annotators: dict[str, list[float | None]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    marks: list[tuple[str, int, bool]] = field(default_factory=list)


def _ranking_sign(ranking: Any, low: int, high: int) -> float | None:
    """+1 when ``low`` is ranked above ``high``, -1 below, None when tied or not both placed."""
    place: dict[int, int] = {}
    for n, group in enumerate(ranking or ()):
        for rid in group if isinstance(group, list | tuple) else (group,):
            try:
                place[int(rid)] = n
            except (TypeError, ValueError):
                continue
    if low not in place or high not in place or place[low] == place[high]:
        return None
    return 1.0 if place[low] < place[high] else -1.0


def discretion_inputs(*, project: Project, jury: str | None = None) -> DiscretionInputs:
    """The discretion inputs of ``project`` (see :class:`DiscretionInputs`) in four queries: the
    panels' p_i, the principle set, the current annotations of the items with p_i (with pairs or
    rankings) and their annotators. ``jury``: which jury's p_i (its name); default the jury whose
    principles run is the newest."""
    out = DiscretionInputs()
    panel = PrinciplePreference.objects.filter(project=project, source=Annotation.Source.JURY)
    seen: dict[str, int] = {}
    for name, newest in panel.values_list("source_detail").annotate(newest=Max("id")).order_by("-newest"):
        seen.setdefault(name, newest)
    names = list(seen)
    out.juries = [f"jury:{n}" if n else JURY for n in names]
    if not names:
        return out
    chosen = jury if jury is not None else names[0]
    if chosen.startswith("jury:"):
        chosen = chosen[5:]
    out.jury = f"jury:{chosen}" if chosen else JURY
    codes = list(
        Principle.objects.filter(principle_set_id=project.principle_set_id).order_by("order", "code")
        .values_list("pk", "code")
    ) if project.principle_set_id else []
    column = {pk: n for n, (pk, _) in enumerate(codes)}
    out.principles = [code for _, code in codes]
    cells: dict[tuple[int, int, int], dict[int, tuple[float | None, float]]] = {}
    for item_id, a, b, principle_id, pref, prob_a, prob_b in (
        panel.filter(source_detail=chosen).order_by("id")
        .values_list("item_id", "pair_a_id", "pair_b_id", "principle_id", "preference", "prob_a", "prob_b")
    ):
        if principle_id not in column:
            continue
        sign = None if pref is None else float(pref)
        if a > b:
            a, b = b, a
            sign = None if sign is None else -sign
            prob_a = prob_b
        cells.setdefault((item_id, a, b), {})[column[principle_id]] = (sign, prob_a)  # newer rows win
    out.rows = sorted(cells)
    width = len(codes)
    for row in out.rows:
        values = cells[row]
        out.p.append([values[k][0] if k in values else None for k in range(width)])
        out.prob_a.append([values[k][1] if k in values else None for k in range(width)])
    index: dict[int, list[int]] = defaultdict(list)
    for n, (item_id, _, _) in enumerate(out.rows):
        index[item_id].append(n)
    prefs: dict[str, dict[int, float | None]] = {}
    marks: dict[tuple[str, int], bool] = {}
    current = Annotation.objects.filter(project=project, item_id__in=list(index)).current()
    for item_id, source, username, rater, detail, ranking, pair_a, pair_b, choice, conflicted in (
        current.order_by("id").values_list(
            "item_id", "source", "annotator__username", "rater", "source_detail", "ranking", "pair_a_id",
            "pair_b_id", "pair_choice", "principles_conflicted",
        ).iterator(chunk_size=5000)
    ):
        rid, kind = rater_id(source, username, rater, detail)
        mine = prefs.setdefault(rid, {})
        out.kinds.setdefault(rid, kind)
        for n in index[item_id]:
            _, low, high = out.rows[n]
            vote: float | None = None
            if choice and pair_a is not None and pair_b is not None and {pair_a, pair_b} == {low, high}:
                if choice in ("a", "b"):
                    first_wins = choice == "a"
                    vote = 1.0 if first_wins == (pair_a == low) else -1.0
            elif ranking:
                vote = _ranking_sign(ranking, low, high)
            else:
                continue
            mine[n] = vote  # a rater's newer answer wins
            if kind == HUMAN:
                marks[(rid, n)] = bool(conflicted)
    for rid, votes in prefs.items():
        if any(v is not None for v in votes.values()):
            out.annotators[rid] = [votes.get(n) for n in range(len(out.rows))]
    marked = {rid for rid, _ in marks}
    out.kinds = {r: k for r, k in out.kinds.items() if r in out.annotators or r in marked}
    out.marks = [(rid, n, mark) for (rid, n), mark in marks.items()]
    return out


def project_annotation_count(*, project: Project) -> int:
    """How many annotations the project holds (every version: what the computation reads grows
    with it); compared with ``METRICS_WORKER_THRESHOLD``."""
    return Annotation.objects.filter(project=project).count()


def project_progress(*, project: Project) -> dict[str, Any]:
    """Progress over time, in three queries: judgments per day by source (every annotation,
    corrections included: work done), and the day each item reached the project's overlap (its
    ``overlap``-th distinct workbench person; imported and machine judgments do not count), with
    the number of items. Days are UTC dates as ``YYYY-MM-DD``; ``throughput`` is the mean of
    judgments per day over the last 7 days with any (people only) and over all of them."""
    from django.db.models.functions import TruncDate

    per_day: dict[str, dict[str, int]] = {}
    for day, source, n in (
        Annotation.objects.filter(project=project).annotate(day=TruncDate("created_at"))
        .values_list("day", "source").annotate(n=Count("pk")).order_by()
    ):
        key = day.isoformat() if day is not None else ""
        per_day.setdefault(key, {})[source] = per_day.setdefault(key, {}).get(source, 0) + n
    firsts: dict[int, list[Any]] = defaultdict(list)
    for item_id, _, first in (
        Annotation.objects.filter(project=project, source=Annotation.Source.HUMAN, annotator__isnull=False)
        .values_list("item_id", "annotator_id").annotate(first=Min("created_at")).order_by()
    ):
        firsts[item_id].append(first)
    overlap = max(int(project.overlap), 1)
    complete: dict[str, int] = {}
    for times in firsts.values():
        if len(times) >= overlap:
            day = sorted(times)[overlap - 1].date().isoformat()
            complete[day] = complete.get(day, 0) + 1
    days = sorted(set(per_day) | set(complete))
    rows: list[dict[str, Any]] = []
    done = 0
    for day in days:
        done += complete.get(day, 0)
        sources = per_day.get(day, {})
        people = sources.get(Annotation.Source.HUMAN, 0) + sources.get(Annotation.Source.ADJUDICATION, 0)
        rows.append({"day": day, "judgments": sum(sources.values()), "people": people,
                     "imported": sources.get(Annotation.Source.IMPORT, 0),
                     "machine": sum(sources.values()) - people - sources.get(Annotation.Source.IMPORT, 0),
                     "items_complete": complete.get(day, 0), "items_complete_total": done})
    worked: list[int] = [int(r["people"]) for r in rows if r["people"]]
    return {
        "days": rows, "overlap": overlap, "items": Item.objects.filter(project=project).count(),
        "items_complete": done,
        "throughput": {"last_7_days": sum(worked[-7:]) / len(worked[-7:]) if worked else None,
                       "all_days": sum(worked) / len(worked) if worked else None, "days_worked": len(worked)},
    }


def project_preference_pairs(*, project: Project) -> int:
    """How many pairs of the project have the jury's principle preferences p_i (the discretion rows);
    compared with ``METRICS_WORKER_PI_PAIRS``."""
    return (
        PrinciplePreference.objects.filter(project=project, source=Annotation.Source.JURY)
        .values("item_id", "pair_a_id", "pair_b_id").distinct().count()
    )
