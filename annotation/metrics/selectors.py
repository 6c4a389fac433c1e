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
- an adjudication: ``"adjudication"``;
- the consensus (added by the service, not read here): ``"consensus"``, the majority label of the
  people (workbench and imported raters) on each unit, ties left out.

Per-juror and per-guard verdicts are not read: ``annotation`` holds only the jury's decision
(``Annotation(source="jury")``); the jurors' own verdicts live in the ``jury`` app, which
``annotation`` does not import. They join the matrix once they are recorded through
``annotation``'s judgment service.

Units: a prompt's label is rated on the item id; a response's label on ``(item_id, response_id)``;
a pairwise choice on ``(item_id, low_response_id, high_response_id)`` with the choice oriented so
``"a"`` is always the response with the lower id.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, OuterRef, Subquery

from annotation.models import Annotation, Assignment, HazardCategory, Item, Project, ResponseSafety

HUMAN, IMPORT, JURY, ADJUDICATION, CONSENSUS = "human", "import", "jury", "adjudication", "consensus"
RESERVED_IDS = frozenset({IMPORT, JURY, ADJUDICATION, CONSENSUS})
# Kinds whose labels count as people's judgments (the agreement figures and the consensus).
PEOPLE = frozenset({HUMAN, IMPORT})

Row = tuple[str, Hashable, Any]


def rater_id(source: str, username: str | None, rater: str, source_detail: str) -> tuple[str, str]:
    """The readable rater id and its kind for one annotation's fields."""
    if source == Annotation.Source.IMPORT:
        return (f"import:{rater}" if rater else IMPORT), IMPORT
    if source == Annotation.Source.JURY:
        return (f"jury:{source_detail}" if source_detail else JURY), JURY
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
    # Gold answers per unit (prompt: item id; response: (item id, response id)).
    gold: dict[Hashable, str] = field(default_factory=dict)
    # Workbench people only: durations (ms) of their current annotations; assignment outcomes.
    durations_ms: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    outcomes: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    category_order: list[str] = field(default_factory=list)

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


def project_ratings(*, project: Project) -> ProjectRatings:
    """Everything the project metrics read, in six queries: current annotations, their response
    labels, the taxonomy's category order, gold items (with their responses' positions) and the
    workbench assignment outcomes per person."""
    out = ProjectRatings()
    current = Annotation.objects.filter(project=project).current()
    by_annotation: dict[int, str] = {}
    for (pk, item_id, source, username, rater, detail, label, categories, ranking, pair_a, pair_b, choice,
         duration) in current.order_by("id").values_list(
            "id", "item_id", "source", "annotator__username", "rater", "source_detail", "prompt_label",
            "prompt_categories", "ranking", "pair_a_id", "pair_b_id", "pair_choice", "duration_ms",
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
    return out


def _count(qs) -> Subquery:
    return Subquery(qs.order_by().values("project").annotate(n=Count("pk")).values("n")[:1])


def project_ratings_version(*, project: Project) -> tuple[int, int, int, int]:
    """What the project's metrics depend on, read in one query: the newest annotation id
    (annotations are append-only, so every new judgment, correction or undo raises it), the numbers
    of skipped and flagged assignments (a skip or a flag writes no annotation) and of gold items.
    The cache key of :func:`annotation.metrics.services.project_metrics`. (An edit of a gold item's
    answer that keeps the number of gold items is not seen: the cached figures stay until the next
    judgment.)"""
    row = Project.objects.filter(pk=project.pk).values_list(
        Subquery(Annotation.objects.filter(project=OuterRef("pk")).order_by("-id").values("id")[:1]),
        _count(Assignment.objects.filter(project=OuterRef("pk"), status=Assignment.Status.SKIPPED)),
        _count(Assignment.objects.filter(project=OuterRef("pk"), status=Assignment.Status.FLAGGED)),
        _count(Item.objects.filter(project=OuterRef("pk"), is_gold=True)),
    ).first()
    if row is None:
        return (0, 0, 0, 0)
    newest, skipped, flagged, gold = row
    return (newest or 0, skipped or 0, flagged or 0, gold or 0)


def project_annotation_count(*, project: Project) -> int:
    """How many annotations the project holds (every version: what the computation reads grows
    with it); compared with ``METRICS_WORKER_THRESHOLD``."""
    return Annotation.objects.filter(project=project).count()
