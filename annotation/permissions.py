"""DRF permission classes built on ``annotation.roles`` (the one place that decides access).

Project-scoped classes read the project slug from the URL (``slug`` kwarg), resolve the project
once and leave it on the request as ``request.project`` / ``request.project_role`` for the view.
Non-members get 404 (``Http404``, which DRF turns into a 404 response), never 403, so a project's
existence does not leak. Anonymous callers are refused first, by ``IsAuthenticated`` semantics,
before any project lookup.

Each class has a ``description`` that ``TribunalAutoSchema`` copies into the OpenAPI operation,
so the schema at ``/api/schema/`` states who may call each endpoint. Other apps (jury, exports)
reuse these classes for their own project-scoped endpoints.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import SAFE_METHODS, AllowAny, BasePermission
from rest_framework.request import Request

from annotation import roles

if TYPE_CHECKING:
    from annotation.models import Project


class ProjectRequest(Request):
    """The request a view guarded by :class:`IsProjectMember` or :class:`IsProjectResearcher`
    receives: the project resolved once, and the caller's role in it. For annotations only (the
    permission sets the two attributes on DRF's own Request; no instance of this class is made)."""

    project: Project
    project_role: str | None


class IsAuthenticatedUser(BasePermission):
    description = "Authenticated users."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)


class IsSiteAdmin(IsAuthenticatedUser):
    description = "Site admins only."

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and roles.is_admin(request.user)


class IsSiteResearcherForWrites(IsAuthenticatedUser):
    """Reading is open to every authenticated user; writing needs the site-wide researcher role
    (admins included). Used for ``/api/projects/``, where reading lists only visible projects."""

    description = "Any authenticated user may read; creating needs the researcher or admin role."

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in SAFE_METHODS or roles.is_researcher(request.user)


class IsProjectMember(IsAuthenticatedUser):
    description = (
        "Members of the project (annotators and researchers) and admins; "
        "anyone else gets 404 as if the project did not exist."
    )

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        project, role = roles.get_project_for_member(request.user, view.kwargs["slug"])
        request.project, request.project_role = project, role
        return True


class IsProjectResearcher(IsAuthenticatedUser):
    description = (
        "Researchers who are members of the project, and admins; "
        "annotators and non-members get 404."
    )

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        request.project = roles.get_project_for_researcher(request.user, view.kwargs["slug"])
        request.project_role = roles.project_role(request.user, request.project)
        return True


def can_see_judgments(role: str | None) -> bool:
    """Whether a project role may see other people's annotations (researchers and admins only)."""
    return roles.role_manages(role)


class TribunalAutoSchema(AutoSchema):
    """drf-spectacular schema that appends each endpoint's permission descriptions to its
    OpenAPI ``description`` and lists them under the ``x-permissions`` extension."""

    def _permission_texts(self) -> list[str]:
        texts = []
        for permission in self.view.get_permissions():
            # A permission class without ``description`` is named by its docstring's first line
            # (DRF's own classes have one), else by its class name.
            doc = (type(permission).__doc__ or "").strip().splitlines()
            text = getattr(permission, "description", None) or (doc[0] if doc else type(permission).__name__)
            if isinstance(permission, AllowAny):
                text = "No authentication required."
            texts.append(text)
        return texts or ["No authentication required."]

    # drf-spectacular changed the signature of DRF's ViewInspector.get_description (no path, method)
    # and ignores the override itself; this follows drf-spectacular's AutoSchema.
    def get_description(self) -> str:  # type: ignore[override]
        base = super().get_description() or ""
        texts = self._permission_texts()
        return (base + "\n\n" if base else "") + "**Permissions:** " + " ".join(texts)

    def get_serializer_name(self, serializer, direction) -> str:
        # Nested InputSerializer/OutputSerializer classes share their short names across views;
        # name components after their qualified name instead: ProjectListApi.OutputSerializer
        # becomes "ProjectListOutput".
        parts = type(serializer).__qualname__.split(".")
        cleaned = []
        for i, part in enumerate(parts):
            part = part.strip("_")
            if part.endswith("Serializer"):
                part = part[: -len("Serializer")]
            if i == 0 and len(parts) > 1 and part.endswith("Api"):
                part = part[: -len("Api")]
            cleaned.append(part)
        return "".join(cleaned)

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is not None:
            operation["x-permissions"] = self._permission_texts()
        return operation
