"""A project's agreement figures in one JSON-ready dict (the ``metrics`` command, the API, the page).

:func:`project_metrics` reads the ratings (:mod:`annotation.metrics.selectors`), builds the report
(:mod:`annotation.metrics.report`, the pure functions of :mod:`annotation.metrics.agreement`) and
caches it (Django's cache) under the project's newest annotation id, so a second call before the
next judgment costs one query. The report's module, with numpy, scipy and krippendorff, is imported
on the first call, not when the web process loads its URLs.
"""
from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone

from annotation.metrics.selectors import project_ratings, project_ratings_version
from annotation.models import Project

DEFAULT_BOOT = 1000
MAX_BOOT = 5000
CACHE_SECONDS = 24 * 3600
# Bump when the shape or the meaning of the result changes, so cached results of older code are not served.
RESULT_VERSION = 2


def project_metrics(project: Project, *, n_boot: int = DEFAULT_BOOT, seed: int = 0, use_cache: bool = True) -> dict:
    """Every agreement figure of the project (see :mod:`annotation.metrics.report`), JSON-serialisable.

    Cached under the project, its newest annotation id (and skip, flag and gold counts), ``n_boot``
    and ``seed``: a second call before anything changes is one query. ``computed_at`` tells when
    the figures were computed, ``cached`` whether this call computed them."""
    n_boot = max(0, min(int(n_boot), MAX_BOOT))
    version = project_ratings_version(project=project)
    key = f"metrics:v{RESULT_VERSION}:{project.pk}:{'-'.join(map(str, version))}:{n_boot}:{seed}"
    if use_cache:
        hit = cache.get(key)
        if hit is not None:
            return {**hit, "cached": True}
    from annotation.metrics.report import metrics_report

    result = metrics_report(project, project_ratings(project=project), n_boot=n_boot, seed=seed)
    result["newest_annotation_id"] = version[0]
    result["computed_at"] = timezone.now().isoformat()
    if use_cache:
        cache.set(key, result, CACHE_SECONDS)
    return {**result, "cached": False}
