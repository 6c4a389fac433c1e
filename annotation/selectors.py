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
