"""Who may do what. Every view and API endpoint asks these helpers; none decides on its own.

Site-wide roles are Django groups:
- ``admin``: everything, including Django admin (superusers count as admins);
- ``researcher``: may create projects; inside a project where they are a researcher member they
  import, run juries, adjudicate and export;
- ``annotator``: annotates in the projects they are a member of, nothing else.

Project data is visible only to members (and admins). A non-member gets 404, not 403, so the
existence of a project is not leaked.
"""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.http import Http404

from annotation.models import Membership, Project

ADMIN = "admin"
RESEARCHER = "researcher"
ANNOTATOR = "annotator"
GROUPS = (ADMIN, RESEARCHER, ANNOTATOR)

User = AbstractBaseUser | AnonymousUser


def _group_names(user) -> set[str]:
    cached = getattr(user, "_tribunal_groups", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) if user.is_authenticated else set()
        user._tribunal_groups = cached
    return cached


def is_admin(user) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or ADMIN in _group_names(user)))


def is_researcher(user) -> bool:
    """Site-wide researcher (or admin)."""
    return is_admin(user) or (user.is_authenticated and RESEARCHER in _group_names(user))


def effective_role(*, is_admin: bool, membership_role: str | None, holds_researcher_role: bool) -> str | None:
    """The user's role in one project: the one rule every check applies to what it loaded.

    Admins are admins everywhere. A researcher membership only counts for users who hold the
    researcher role site-wide (a demoted researcher keeps annotating); otherwise the membership
    role stands, and no membership is no access (``None``).
    """
    if is_admin:
        return ADMIN
    if membership_role == Membership.Role.RESEARCHER and not holds_researcher_role:
        return ANNOTATOR
    return membership_role


def role_manages(role: str | None) -> bool:
    """Whether a project role may manage the project (import, jury, export, adjudicate) and see
    other people's judgments: researchers and admins."""
    return role in (ADMIN, RESEARCHER)


def visible_projects(user) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if is_admin(user):
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def project_role(user, project: Project) -> str | None:
    """``admin``, ``researcher``, ``annotator`` or ``None`` (no access)."""
    if not user.is_authenticated:
        return None
    if is_admin(user):
        return ADMIN
    role = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    return effective_role(is_admin=False, membership_role=role, holds_researcher_role=is_researcher(user))


def get_project_for_member(user, slug: str) -> tuple[Project, str]:
    """The project and the user's role in it; 404 when the user is not a member.

    One query: the project, the user's membership role and the two site-wide groups that matter
    are read together (this runs on every request of the annotation hot path), then
    :func:`effective_role` decides.
    """
    if not user.is_authenticated:
        raise Http404("No such project.")
    project = (
        Project.objects.select_related("taxonomy_version__taxonomy", "principle_set")
        .filter(slug=slug)
        .annotate(
            _member_role=Subquery(Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]),
            _in_admin_group=Exists(user.groups.filter(name=ADMIN)),
            _in_researcher_group=Exists(user.groups.filter(name=RESEARCHER)),
        )
        .first()
    )
    if project is None:
        raise Http404("No such project.")
    role = effective_role(
        is_admin=user.is_superuser or project._in_admin_group,
        membership_role=project._member_role,
        holds_researcher_role=project._in_researcher_group,
    )
    if role is None:
        raise Http404("No such project.")
    return project, role


def get_project_for_researcher(user, slug: str) -> Project:
    """The project when the user may manage it (import, jury, export, adjudicate); 404 otherwise.

    Annotators get 404 too: they must not learn that management pages exist for the project.
    """
    project, role = get_project_for_member(user, slug)
    if not role_manages(role):
        raise Http404("No such project.")
    return project


def can_manage(user, project: Project) -> bool:
    return role_manages(project_role(user, project))
