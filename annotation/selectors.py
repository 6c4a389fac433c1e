"""Reads for pages and the API. Every function returns what its caller shows, with the related
rows it needs already loaded (so templates and serializers never query).

Access checks are not made here: callers first ask ``annotation.roles`` who may see what, then
call a selector with the project (or the user) that check returned.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery

from annotation import roles
from annotation.models import (
    MACHINE_RATER_SOURCES,
    Annotation,
    HazardCategory,
    ImportBatch,
    Item,
    Membership,
    Principle,
    PrincipleSet,
    Project,
    Response,
    Taxonomy,
    TaxonomyVersion,
)


def project_list_for_user(*, user) -> list[Project]:
    """The projects ``user`` may see, each with ``item_count``, ``import_count`` and ``user_role``.

    Three queries whatever the number of projects: the user's groups (cached on the user), the
    projects with their counts and the user's membership role, and nothing else.
    """
    is_admin, holds_researcher_role = roles.is_admin(user), roles.is_researcher(user)
    membership_role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    projects = (
        roles.visible_projects(user)
        .select_related("taxonomy_version__taxonomy")
        .annotate(
            # Subqueries, not Count() joins: two joined Counts multiply each other.
            # NULL for a project without items; item_count below is always an int.
            items_counted=Subquery(
                Item.objects.filter(project=OuterRef("pk")).order_by().values("project")
                .annotate(n=Count("pk")).values("n")[:1]
            ),
            membership_role=Subquery(membership_role),
        )
        .order_by("name")
    )
    result: list[Project] = []
    for project in projects:
        project.item_count = project.items_counted or 0
        project.user_role = roles.effective_role(
            is_admin=is_admin, membership_role=project.membership_role, holds_researcher_role=holds_researcher_role
        )
        result.append(project)
    return result


@dataclass(frozen=True)
class ProjectCounts:
    items: int
    responses: int
    annotations: int
    human_annotations: int
    imports: int


def project_counts(*, project: Project) -> ProjectCounts:
    items = Item.objects.filter(project=project).count()
    responses = Response.objects.filter(item__project=project).count()
    ann = project.annotations.judgments().aggregate(total=Count("pk"), human=Count("pk", filter=Q(source="human")))
    return ProjectCounts(
        items=items,
        responses=responses,
        annotations=ann["total"],
        human_annotations=ann["human"],
        imports=ImportBatch.objects.filter(project=project).count(),
    )


def import_batch_list(*, project: Project) -> QuerySet[ImportBatch]:
    """Newest first, without the (possibly long) error list."""
    return (
        ImportBatch.objects.filter(project=project)
        .select_related("created_by")
        .defer("errors")
        .order_by("-created_at", "-pk")
    )


def import_batch_get(*, project: Project, pk: int) -> ImportBatch | None:
    """One batch of ``project`` (``None`` when the id belongs to another project)."""
    return ImportBatch.objects.select_related("created_by", "project").filter(project=project, pk=pk).first()


def item_list(*, project: Project, with_annotation_counts: bool = False) -> QuerySet[Item]:
    """Items of a project with their responses, in queue order (priority first, then id).

    ``with_annotation_counts`` adds ``annotation_count`` (for researchers: an annotator must not
    learn how others judged an item, not even how many did)."""
    qs = Item.objects.filter(project=project).prefetch_related(
        Prefetch("responses", queryset=Response.objects.order_by("position"))
    )
    if with_annotation_counts:
        qs = qs.annotate(annotation_count=Count(
            "annotations", distinct=True, filter=~Q(annotations__source__in=MACHINE_RATER_SOURCES)
        ))
    return qs.order_by("-priority", "id")


def item_get(*, project: Project, pk: int, with_annotations: bool = False) -> Item | None:
    """One item of ``project``; with its annotations (and their safety labels and principles) only
    when the caller may see other people's judgments."""
    qs = Item.objects.filter(project=project, pk=pk).prefetch_related(
        Prefetch("responses", queryset=Response.objects.order_by("position"))
    )
    if with_annotations:
        qs = qs.prefetch_related(
            Prefetch(
                "annotations",
                queryset=Annotation.objects.judgments().select_related("annotator", "taxonomy_version__taxonomy")
                .prefetch_related("response_safety", "principles")
                .order_by("id"),
            )
        )
    return qs.first()


def taxonomy_list() -> QuerySet[Taxonomy]:
    return Taxonomy.objects.prefetch_related(
        Prefetch("versions", queryset=TaxonomyVersion.objects.order_by("-version"))
    ).order_by("name")


def taxonomy_version_get(*, slug: str, number: int) -> TaxonomyVersion | None:
    return (
        TaxonomyVersion.objects.select_related("taxonomy")
        .prefetch_related(Prefetch("categories", queryset=HazardCategory.objects.order_by("order", "code")))
        .filter(taxonomy__slug=slug, version=number)
        .first()
    )


def taxonomy_version_for_new_project(*, slug: str, number: int | None) -> TaxonomyVersion | None:
    """Version ``number`` of taxonomy ``slug``, or without a number its newest published version."""
    versions = TaxonomyVersion.objects.filter(taxonomy__slug=slug)
    if number is not None:
        return versions.filter(version=number).first()
    return versions.filter(status=TaxonomyVersion.Status.PUBLISHED).order_by("-version").first()


def principle_set_get(*, slug: str) -> PrincipleSet | None:
    return PrincipleSet.objects.filter(slug=slug).first()


def principle_set_list() -> QuerySet[PrincipleSet]:
    return PrincipleSet.objects.prefetch_related(
        Prefetch("principles", queryset=Principle.objects.order_by("order", "code"))
    ).order_by("name")


def api_tokens(*, user) -> list:
    """``user``'s live API tokens, newest first (public ids and dates; the tokens are stored only hashed)."""
    from django.db.models import Q
    from django.utils import timezone
    from knox.models import AuthToken

    return list(
        AuthToken.objects.filter(user=user)
        .filter(Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()))
        .order_by("-created")
    )


_DIFF_FIELDS = ("name", "group", "description", "aliases", "order")


@dataclass(frozen=True)
class TaxonomyVersionDiff:
    """What publishing a draft changes against the version it is based on (or the newest published one)."""

    base: TaxonomyVersion | None
    added: list[HazardCategory]
    removed: list[HazardCategory]
    changed: list[tuple[str, str, object, object]]  # (code, field, before, after)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed)


def taxonomy_version_diff(*, version: TaxonomyVersion) -> TaxonomyVersionDiff:
    base = version.based_on
    if base is None:
        base = (
            TaxonomyVersion.objects.filter(taxonomy_id=version.taxonomy_id, status=TaxonomyVersion.Status.PUBLISHED)
            .exclude(pk=version.pk)
            .order_by("-version")
            .first()
        )
    new = {c.code: c for c in version.categories.all()}
    old = {c.code: c for c in base.categories.all()} if base is not None else {}
    changed = [
        (code, field, getattr(old[code], field), getattr(new[code], field))
        for code in new
        if code in old
        for field in _DIFF_FIELDS
        if getattr(old[code], field) != getattr(new[code], field)
    ]
    return TaxonomyVersionDiff(
        base=base,
        added=[c for code, c in new.items() if code not in old],
        removed=[c for code, c in old.items() if code not in new],
        changed=changed,
    )

# --- Edit reviews (issue 11) -------------------------------------------------------------------------


@dataclass(frozen=True)
class EditOutcome:
    """The review consensus on one edited response.

    ``verdict``: "accept" / "reject" / "fix", or None (not reviewed yet, or the reviewers tie and
    nobody adjudicated). ``fix_response_id``: with "fix", the human fix that stands (a Response
    origin=human_edited whose parent is the edit). ``votes``: the reviewers' current verdicts counted;
    ``adjudicated``: a researcher's decision set the verdict."""

    verdict: str | None
    fix_response_id: int | None
    review_item_id: int
    votes: dict[str, int]
    adjudicated: bool


def edit_review_outcomes(project: Project, *, review_item_ids: list[int] | None = None) -> dict[int, EditOutcome]:
    """The review consensus of every edit under review in ``project``:
    ``{edited_response_id: EditOutcome}`` (``.verdict`` "accept" | "reject" | "fix" | None, and
    ``.fix_response_id``). Every edit that has a review item is a key, reviewed or not.

    The rule: a researcher's standing adjudication decides; otherwise the verdict most reviewers
    gave (current records only: an undone review does not count), None on a tie. With "fix", the
    fix that stands is the adjudicator's, else the newest reviewer's fix. Exports build pairs from
    ``verdict == "accept"`` (the edit) and ``"fix"`` (the fix) only. Two queries.
    ``review_item_ids``: only these review items (the adjudication page asks for one)."""
    outcomes: dict[int, EditOutcome] = {}
    review_items = Item.objects.filter(project=project, kind=Item.Kind.EDIT_REVIEW)
    records = (
        Annotation.objects.current()
        .filter(project=project, item__kind=Item.Kind.EDIT_REVIEW)
        .exclude(edit_verdict="")
        .filter(source__in=[Annotation.Source.HUMAN, Annotation.Source.ADJUDICATION])
        .order_by("pk")
        .values_list("item_id", "source", "edit_verdict", "edit_fix_id")
    )
    if review_item_ids is not None:
        review_items = review_items.filter(pk__in=review_item_ids)
        records = records.filter(item_id__in=review_item_ids)
    by_item: dict[int, list[tuple[str, str, int | None]]] = {}
    for item_id, source, verdict, fix_id in records:
        by_item.setdefault(item_id, []).append((source, verdict, fix_id))
    for item_id, edited_id in review_items.values_list("pk", "review_of_id"):
        rows = by_item.get(item_id, [])
        votes: dict[str, int] = {}
        for source, verdict, _fix in rows:
            if source == Annotation.Source.HUMAN:
                votes[verdict] = votes.get(verdict, 0) + 1
        decided = [r for r in rows if r[0] == Annotation.Source.ADJUDICATION]
        verdict_out: str | None
        fix_id_out: int | None = None
        if decided:
            _source, verdict_out, fix_id_out = decided[-1]
        elif votes:
            top = max(votes.values())
            leaders = [v for v, n in votes.items() if n == top]
            verdict_out = leaders[0] if len(leaders) == 1 else None
            if verdict_out == Annotation.EditVerdict.FIX:
                fix_id_out = [f for s, v, f in rows if v == "fix" and f is not None][-1]
        else:
            verdict_out = None
        outcomes[edited_id] = EditOutcome(
            verdict=verdict_out, fix_response_id=fix_id_out if verdict_out == "fix" else None,
            review_item_id=item_id, votes=votes, adjudicated=bool(decided),
        )
    return outcomes
