"""Template context shared by every page (the nav in base.html)."""
from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from annotation import roles


def site_role(user) -> str | None:
    """The user's site-wide role for display: admin, researcher, annotator, or None."""
    if not user.is_authenticated:
        return None
    if roles.is_admin(user):
        return roles.ADMIN
    if roles.is_researcher(user):
        return roles.RESEARCHER
    return roles.ANNOTATOR if roles.ANNOTATOR in roles._group_names(user) else None


def tribunal(request: HttpRequest) -> dict:
    # Lazy: a page that never shows the nav (an htmx partial) costs no query.
    return {"site_role": SimpleLazyObject(lambda: site_role(request.user) or "")}
