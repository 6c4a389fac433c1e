"""Reads of the annotation workbench. Everything a template shows is computed here.

Blind by default: nothing here returns another person's annotation or a jury verdict to an
annotator, except :func:`jury_suggestion`, which views call only when the project turned
``show_jury_suggestion`` on.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q

from annotation.judgments import is_label_category, response_letter
from annotation.models import (
    Annotation,
    Assignment,
    HazardCategory,
    Item,
    Principle,
    PriorityRaise,
    Project,
    Response,
)

ST = Assignment.Status

# --- The task ----------------------------------------------------------------------------------------


def assignment_for_annotator(*, project: Project, annotator, item_id: int) -> Assignment | None:
    """The assignment of ``item_id`` to ``annotator`` in ``project`` (any status), with its item;
    None when the item was never handed to them."""
    return (
        Assignment.objects.filter(project=project, annotator=annotator, item_id=item_id)
        .select_related("item")
        .first()
    )


def item_in_project(*, project: Project, item_id: int) -> Item | None:
    return Item.objects.filter(project=project, pk=item_id).first()


def remember_responses(assignment: Assignment, responses: list[Response]) -> None:
    """Keep the item's responses that the claim just read on the assignment object (this request only)."""
    # A per-request cache on the instance, not a model field: read back with getattr below.
    setattr(assignment, "_tribunal_responses", responses)  # noqa: B010


def responses_in_order(assignment: Assignment) -> list[Response]:
    known = getattr(assignment, "_tribunal_responses", None)
    if known is None or any(r.item_id != assignment.item_id for r in known):
        known = Response.objects.judged().filter(item_id=assignment.item_id)
    by_id = {r.pk: r for r in known}
    ordered = [by_id[rid] for rid in assignment.shown_order if rid in by_id]
    return ordered


def categories(project: Project) -> list[HazardCategory]:
    return list(project.taxonomy_version.categories.order_by("order", "code"))


def pickable_categories(project: Project) -> list[HazardCategory]:
    """The categories a person may pick (for "unsafe" only): the taxonomy's, less its "Needs Caution"
    entry, which is the label of that name (annotation.judgments.is_label_category)."""
    return [c for c in categories(project) if not is_label_category(c.name)]


def principles(project: Project) -> list[Principle]:
    principle_set = project.principle_set  # None without a query when principle_set_id is None
    if principle_set is None:
        return []
    return list(principle_set.principles.order_by("order", "code"))


@dataclass
class Progress:
    """What the workbench says about progress, for this person and for the project.

    ``left_for_me`` counts the items the queue can still hand this person (the one they hold now
    included): items they never had, or whose lease lapsed, that still have a free slot. The project
    figure counts judgments received against what the overlap asks for (items x overlap), so a
    person who finished their queue in an overlap-2 project sees it moving before any item has all
    its judgments.
    """

    mine_done: int
    left_for_me: int
    items_total: int
    items_complete: int
    judgments_done: int
    overlap: int

    @property
    def judgments_wanted(self) -> int:
        return self.items_total * self.overlap

    @property
    def project_percent(self) -> int:
        wanted = self.judgments_wanted
        return min(100, int(100 * self.judgments_done / wanted)) if wanted else 0


def progress(project: Project, user) -> Progress:
    """My submissions and what the queue still holds for me; the project's judgments against its overlap."""
    regular = Item.objects.filter(project=project, is_gold=False)
    mine = Assignment.objects.filter(project=project, annotator=user)
    mine_done = mine.filter(status=ST.DONE).count()
    held = mine.exclude(status__in=[ST.EXPIRED, ST.RELEASED]).order_by().values("item_id")
    open_to_me = regular.exclude(pk__in=held).filter(filled__lt=project.overlap).count()
    holding = mine.filter(status=ST.ACTIVE, is_gold=False).count()
    # Judgments received per item, at most ``overlap`` each (an over-answered item fills no other's slot).
    done = [
        row["n"] for row in Assignment.objects.filter(project=project, is_gold=False, status=ST.DONE)
        .order_by().values("item_id").annotate(n=Count("pk"))
    ]
    received = sum(min(n, project.overlap) for n in done)
    totals = {"items": regular.count(), "complete": sum(n >= project.overlap for n in done)}
    return Progress(
        mine_done=mine_done, left_for_me=open_to_me + holding, items_total=totals["items"],
        items_complete=totals["complete"], judgments_done=received, overlap=project.overlap,
    )


@dataclass(frozen=True)
class ItemPlace:
    """Where an item sits in its project, as people name it: "Item 7 of 22" (import order), never
    its database id, which runs on across projects."""

    position: int
    count: int
    external_id: str

    def __str__(self) -> str:
        return f"Item {self.position}"


def item_place(item: Item) -> ItemPlace:
    counts = Item.objects.filter(project_id=item.project_id).aggregate(
        before=Count("pk", filter=Q(pk__lte=item.pk)), count=Count("pk")
    )
    return ItemPlace(position=counts["before"], count=counts["count"], external_id=item.external_id)


def item_place_by_id(project: Project, item_id: int) -> ItemPlace | None:
    item = item_in_project(project=project, item_id=item_id)
    return item_place(item) if item is not None else None


def last_undoable(project: Project, user) -> Assignment | None:
    from django.utils import timezone

    last = (
        Assignment.objects.filter(project=project, annotator=user, status=ST.DONE)
        .order_by("-submitted_at", "-pk")
        .first()
    )
    if last is None or last.expires_at < timezone.now():
        return None
    return last


@dataclass
class JurySuggestion:
    source: str
    ranking: list[list[int]] | None
    pair_choice: str
    pair_strength: int | None
    prompt_label: str
    response_labels: dict[int, tuple[str, list[str]]] = field(default_factory=dict)


def jury_suggestion(project: Project, item_id: int) -> JurySuggestion | None:
    """The latest jury annotation of the item, only when the project shows jury suggestions."""
    if not project.show_jury_suggestion:
        return None
    ann = (
        Annotation.objects.filter(item_id=item_id, source=Annotation.Source.JURY, retracted=False)
        .prefetch_related("response_safety")
        .order_by("-pk")
        .first()
    )
    if ann is None:
        return None
    return JurySuggestion(
        source=ann.source_detail or "jury",
        ranking=ann.ranking,
        pair_choice=ann.pair_choice,
        pair_strength=ann.pair_strength,
        prompt_label=ann.prompt_label,
        response_labels={rs.response_id: (rs.label, list(rs.categories)) for rs in ann.response_safety.all()},
    )


# --- Adjudication ------------------------------------------------------------------------------------


def current_annotations(item_ids=None, *, project: Project):
    """Annotations that stand (:meth:`AnnotationQuerySet.current`) in ``project``."""
    qs = Annotation.objects.filter(project=project).judgments().current()
    if item_ids is not None:
        qs = qs.filter(item_id__in=item_ids)
    return qs


def _ranks(ranking: list[list[int]] | None) -> dict[int, int]:
    return {rid: i for i, group in enumerate(ranking or []) for rid in group}


def _pair_score(a: Annotation, b: Annotation) -> float | None:
    """Disagreement in [0, 1] between two annotations of the same item; None if not comparable."""
    parts: list[float] = []
    ra, rb = _ranks(a.ranking), _ranks(b.ranking)
    common = sorted(set(ra) & set(rb))
    if len(common) >= 2:
        pairs = list(itertools.combinations(common, 2))
        # A pair counts as disagreement when the two orders differ in sign (tie vs order is half).
        total = 0.0
        for x, y in pairs:
            sa = (ra[x] > ra[y]) - (ra[x] < ra[y])
            sb = (rb[x] > rb[y]) - (rb[x] < rb[y])
            total += abs(sa - sb) / 2
        parts.append(total / len(pairs))
    if a.pair_choice and b.pair_choice and {a.pair_a_id, a.pair_b_id} == {b.pair_a_id, b.pair_b_id}:
        def signed(ann: Annotation) -> int:
            # annotation_pairwise_complete: a pair_choice comes with both responses.
            assert ann.pair_a_id is not None and ann.pair_b_id is not None
            s = ann.pair_strength or 1  # an imported preference without a strength: its direction only
            winner = ann.pair_a_id if ann.pair_choice == "a" else ann.pair_b_id
            return 0 if ann.pair_choice == "tie" else (s if winner == min(ann.pair_a_id, ann.pair_b_id) else -s)

        parts.append(abs(signed(a) - signed(b)) / 6)
    if a.edit_verdict and b.edit_verdict:  # an edit review: the verdicts agree or not (nominal)
        parts.append(float(a.edit_verdict != b.edit_verdict))
    la = {rs.response_id: rs.label for rs in a.response_safety.all()}
    lb = {rs.response_id: rs.label for rs in b.response_safety.all()}
    if a.prompt_label and b.prompt_label:
        la[0], lb[0] = a.prompt_label, b.prompt_label
    shared = set(la) & set(lb)
    if shared:
        parts.append(sum(la[k] != lb[k] for k in shared) / len(shared))
    return max(parts) if parts else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class AdjudicationRow:
    item: Item
    humans: int
    human_human: float | None
    human_jury: float | None
    decided: bool
    flags: list[str]
    raised: list[str] = field(default_factory=list)  # why its queue priority was raised (jury, guard, ...)
    position: int = 0  # the item's place in the project (import order), as pages name it: "Item 7"

    @property
    def score(self) -> float:
        return max(self.human_human or 0.0, self.human_jury or 0.0)


def adjudication_queue(project: Project, *, limit: int = 200) -> list[AdjudicationRow]:
    """Items with at least two human judgments, or one human judgment and a jury verdict, most
    disagreed first; decided items after undecided ones."""
    anns = list(
        current_annotations(project=project)
        .filter(source__in=[Annotation.Source.HUMAN, Annotation.Source.JURY, Annotation.Source.ADJUDICATION])
        .prefetch_related("response_safety")
        .order_by("item_id", "pk")
    )
    flags: dict[int, list[str]] = {}
    for item_id, reason in Assignment.objects.filter(project=project, status=ST.FLAGGED).values_list("item_id", "reason"):
        flags.setdefault(item_id, []).append(reason)
    by_item: dict[int, list[Annotation]] = {}
    for ann in anns:
        by_item.setdefault(ann.item_id, []).append(ann)
    rows_data = []
    for item_id, group in by_item.items():
        humans = [a for a in group if a.source == Annotation.Source.HUMAN]
        jury = [a for a in group if a.source == Annotation.Source.JURY]
        latest_jury = jury[-1:] if jury else []
        if len(humans) < 2 and not (humans and latest_jury):
            continue
        hh = _mean([s for a, b in itertools.combinations(humans, 2) if (s := _pair_score(a, b)) is not None])
        hj = _mean([s for h in humans for j in latest_jury if (s := _pair_score(h, j)) is not None])
        decided = any(a.source == Annotation.Source.ADJUDICATION for a in group)
        rows_data.append((item_id, len(humans), hh, hj, decided))
    items = Item.objects.in_bulk([r[0] for r in rows_data])
    raised: dict[int, list[str]] = {}
    for item_id, reason in PriorityRaise.objects.filter(item_id__in=items).values_list("item_id", "reason"):
        raised.setdefault(item_id, []).append(reason)
    # Places in the project: one read of the project's item ids (ids only), not one count per row.
    place = {pk: n for n, pk in enumerate(Item.objects.filter(project=project).order_by("pk").values_list("pk", flat=True), 1)}
    rows = [
        AdjudicationRow(item=items[i], humans=n, human_human=hh, human_jury=hj, decided=d, flags=flags.get(i, []),
                        raised=raised.get(i, []), position=place.get(i, 0))
        for i, n, hh, hj, d in rows_data
    ]
    rows.sort(key=lambda r: (r.decided, -r.score, r.item.pk))
    return rows[:limit]


@dataclass
class AdjudicationView:
    item: Item
    responses: list[Response]
    annotations: list[Annotation]  # every record, raw, including superseded and retracted ones
    flags: list[Assignment]
    raised: list[PriorityRaise] = field(default_factory=list)


def adjudication_detail(project: Project, item_id: int) -> AdjudicationView | None:
    item = item_in_project(project=project, item_id=item_id)
    if item is None:
        return None
    responses = list(item.responses.judged().order_by("position"))
    annotations = list(
        Annotation.objects.filter(item=item).judgments()
        .select_related("annotator", "supersedes")
        .prefetch_related("response_safety", Prefetch("principles", queryset=Principle.objects.order_by("order")))
        .order_by("pk")
    )
    flags = list(
        Assignment.objects.filter(item=item, status__in=[ST.FLAGGED, ST.SKIPPED]).select_related("annotator")
    )
    raised = list(PriorityRaise.objects.filter(item=item).order_by("-priority", "pk"))
    return AdjudicationView(item=item, responses=responses, annotations=annotations, flags=flags, raised=raised)


@dataclass
class RecordRow:
    """One raw annotation, formatted for the adjudicator."""

    annotation: Annotation
    who: str
    ranking: str
    pair: str
    prompt_label: str
    response_labels: list[tuple[str, str, list[str]]]
    principles: list[str]
    status: str
    # The rater's own letters where they differ from the page's: [("A", "B"), ("B", "A")] means the rater
    # saw response B first and called it "A" (their rationale's "A" is this page's B). Empty when the
    # rater saw the page's order, or the order is unknown (imports).
    letter_map: list[tuple[str, str]] = field(default_factory=list)


def rater_letter_map(shown_order: list[int] | None, letters: dict[int, str]) -> list[tuple[str, str]]:
    """(the rater's letter, this page's letter) for each response as the rater was shown it; empty when
    the two agree everywhere or nothing was recorded.

    >>> rater_letter_map([12, 11], {11: "A", 12: "B"})
    [('A', 'B'), ('B', 'A')]
    >>> rater_letter_map([11, 12], {11: "A", 12: "B"}), rater_letter_map(None, {11: "A"})
    ([], [])
    """
    pairs = [(response_letter(n), letters[rid]) for n, rid in enumerate(shown_order or []) if rid in letters]
    return [] if all(theirs == ours for theirs, ours in pairs) else pairs


def annotation_rows(detail: AdjudicationView, letters: dict[int, str]) -> list[RecordRow]:
    """Every record of the item with response ids shown as the letters of the adjudication page."""
    superseded = {a.supersedes_id for a in detail.annotations if a.supersedes_id}

    def letter(rid: int | None) -> str:
        return letters.get(rid, "?") if rid is not None else "?"

    rows = []
    for a in detail.annotations:
        who = a.annotator.get_username() if a.annotator is not None else (a.source_detail or a.source)
        ranking = " > ".join(" = ".join(letters.get(r, f"#{r}") for r in group) for group in (a.ranking or []))
        pair = ""
        if a.pair_choice == "tie":
            pair = f"{letter(a.pair_a_id)} ties {letter(a.pair_b_id)}"
        elif a.pair_choice:
            winner, loser = (a.pair_a_id, a.pair_b_id) if a.pair_choice == "a" else (a.pair_b_id, a.pair_a_id)
            if a.pair_strength is None:  # annotation_pairwise_complete: only an imported preference lacks one
                pair = f"{letter(winner)} preferred to {letter(loser)} (no strength stated)"
            else:
                pair = f"{letter(winner)} {Annotation.Strength(a.pair_strength).label.lower()} than {letter(loser)}"
        labels = [(letters.get(rs.response_id, "?"), rs.label, list(rs.categories)) for rs in a.response_safety.all()]
        labels.sort()
        status = "retraction (undo)" if a.retracted else ("superseded" if a.pk in superseded else "current")
        rows.append(
            RecordRow(
                annotation=a, who=who, ranking=ranking, pair=pair, prompt_label=a.prompt_label,
                response_labels=labels, principles=[p.short for p in a.principles.all()], status=status,
                letter_map=rater_letter_map(a.shown_order, letters),
            )
        )
    return rows


def flagged_assignments(*, project: Project, include_skips: bool = False):
    """The items annotators flagged (broken, harmful to view), newest first, with who and why; with
    ``include_skips`` the skips and their reasons too. Researchers' list of what needs their eye."""
    statuses = [ST.FLAGGED, ST.SKIPPED] if include_skips else [ST.FLAGGED]
    return (
        Assignment.objects.filter(project=project, status__in=statuses)
        .select_related("item", "annotator")
        .order_by("-served_at", "-pk")
    )
