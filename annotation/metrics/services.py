"""A project's agreement figures in one JSON-ready dict (the ``metrics`` command, the API, the page).

:func:`project_metrics` reads the ratings (:mod:`annotation.metrics.selectors`), builds the report
(:mod:`annotation.metrics.report`, the pure functions of :mod:`annotation.metrics.agreement`) and
caches it (Django's cache) under the project's newest annotation id, so a second call before the
next judgment costs one query. The report's module, with numpy, scipy and krippendorff, is imported
on the first call, not when the web process loads its URLs.

A project with more than ``settings.METRICS_WORKER_THRESHOLD`` annotations is computed on the worker
(:func:`project_metrics_shown`): a :class:`~annotation.models.MetricsSnapshot` per version of the
project (its newest annotation id, skip, flag and gold counts) is claimed and filled by the task
``annotation.metrics_run`` (the job kit of :mod:`annotation.jobs`), and the page and the API show the
newest stored result with its time, marked ``recomputing`` while a newer one is on its way.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation import jobs
from annotation.metrics.selectors import (
    project_annotation_count,
    project_preference_pairs,
    project_progress,
    project_ratings,
    project_ratings_version,
)
from annotation.models import MetricsSnapshot, Project

logger = logging.getLogger(__name__)

DEFAULT_BOOT = 1000
MAX_BOOT = 5000
CACHE_SECONDS = 24 * 3600
# Bump when the shape or the meaning of the result changes, so cached results of older code are not served.
RESULT_VERSION = 4  # bumped by each change to the result's shape (edit reviews; discretion and machine raters)


def project_metrics(project: Project, *, n_boot: int = DEFAULT_BOOT, seed: int = 0, use_cache: bool = True) -> dict:
    """Every agreement figure of the project (see :mod:`annotation.metrics.report`), JSON-serialisable.

    Cached under the project, its newest annotation id (and skip, flag and gold counts), ``n_boot``
    and ``seed``: a second call before anything changes is one query. ``computed_at`` tells when
    the figures were computed, ``cached`` whether this call computed them."""
    n_boot = _clamp(n_boot)
    version = project_ratings_version(project=project)
    key = f"metrics:v{RESULT_VERSION}:{project.pk}:{_version_key(version)}:{n_boot}:{seed}"
    if use_cache:
        hit = cache.get(key)
        if hit is not None:
            return {**hit, "cached": True}
    result = _compute(project, n_boot, seed, version[0])
    if use_cache:
        cache.set(key, result, CACHE_SECONDS)
    return {**result, "cached": False}


def _clamp(n_boot: int) -> int:
    return max(0, min(int(n_boot), MAX_BOOT))


def _version_key(version: tuple[int, ...]) -> str:
    return f"{RESULT_VERSION}/" + "-".join(map(str, version))


def _compute(project: Project, n_boot: int, seed: int, newest: int) -> dict[str, Any]:
    from annotation.metrics.report import metrics_report

    result = metrics_report(project, project_ratings(project=project), n_boot=n_boot, seed=seed)
    result["progress"] = project_progress(project=project)
    result["newest_annotation_id"] = newest
    result["computed_at"] = timezone.now().isoformat()
    return result


def on_worker(project: Project) -> bool:
    """Whether the project's metrics are computed on the worker: more annotations than
    ``METRICS_WORKER_THRESHOLD``, or more pairs with the jury's p_i than ``METRICS_WORKER_PI_PAIRS``
    (the discretion bootstrap refits w* for every resample)."""
    return (
        project_annotation_count(project=project) > settings.METRICS_WORKER_THRESHOLD
        or project_preference_pairs(project=project) > settings.METRICS_WORKER_PI_PAIRS
    )


def project_metrics_shown(project: Project, *, n_boot: int = DEFAULT_BOOT, seed: int = 0) -> dict[str, Any]:
    """What the page and the API show. Up to ``METRICS_WORKER_THRESHOLD`` annotations:
    :func:`project_metrics` (computed here, cached). Above it, the worker computes and this returns
    at once: the newest stored result of the project (``on_worker`` true, ``snapshot`` with its
    time and version) with ``recomputing`` true while the result for the project as it is now is
    pending or running (one is enqueued if none is), or ``{"pending": true}`` when nothing is
    stored yet. A computation that failed is not retried for the same version (``failed`` says
    so); the next judgment makes a new version."""
    if not on_worker(project):
        return project_metrics(project, n_boot=n_boot, seed=seed)
    n_boot = _clamp(n_boot)
    version = project_ratings_version(project=project)
    key = _version_key(version)
    current = metrics_snapshot_request(project=project, version=key, newest=version[0], n_boot=n_boot, seed=seed)
    shown = current if current.status == MetricsSnapshot.Status.DONE else (
        MetricsSnapshot.objects.filter(project=project, n_boot=n_boot, seed=seed, status=MetricsSnapshot.Status.DONE)
        .order_by("-finished_at", "-pk").first()
    )
    state = {
        "on_worker": True,
        "recomputing": current.status in jobs.ACTIVE,
        "failed": current.status == MetricsSnapshot.Status.FAILED,
        "requested_version": key,
    }
    if shown is None or not shown.result:
        return {"project": project.slug, "n_boot": n_boot, "pending": True, "cached": False, **state}
    return {
        **shown.result, **state, "cached": True,
        "snapshot": {"id": shown.pk, "version": shown.version, "finished_at": shown.finished_at.isoformat()
                     if shown.finished_at else None, "seconds": shown.seconds, "current": shown.pk == current.pk},
    }


def metrics_snapshot_request(*, project: Project, version: str, newest: int, n_boot: int, seed: int) -> MetricsSnapshot:
    """The snapshot of this version (created PENDING and enqueued on the worker if there is none)."""
    found = MetricsSnapshot.objects.filter(project=project, version=version, n_boot=n_boot, seed=seed).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            snapshot = MetricsSnapshot.objects.create(
                project=project, version=version, newest_annotation_id=newest, n_boot=n_boot, seed=seed
            )
    except IntegrityError:  # another request created it first
        return MetricsSnapshot.objects.get(project=project, version=version, n_boot=n_boot, seed=seed)
    _enqueue(snapshot.pk)
    return snapshot


def _enqueue(pk: int) -> None:
    from annotation.tasks import metrics_run_task

    transaction.on_commit(lambda: metrics_run_task.delay(pk))


def metrics_snapshot_run(*, snapshot_id: int) -> MetricsSnapshot | None:
    """Compute a PENDING snapshot on this worker (claimed with the job kit: a second delivery or a
    second worker does nothing and gets None). Older DONE snapshots of the same project, n_boot and
    seed are deleted once this one is stored."""
    if not jobs.claim(model=MetricsSnapshot, pk=snapshot_id):
        return None
    snapshot = MetricsSnapshot.objects.select_related("project").get(pk=snapshot_id)
    start = time.perf_counter()
    try:
        result = _compute(snapshot.project, snapshot.n_boot, snapshot.seed, snapshot.newest_annotation_id)
    except Exception as exc:
        logger.exception("metrics snapshot %s failed", snapshot_id)
        MetricsSnapshot.objects.filter(pk=snapshot_id).update(
            status=MetricsSnapshot.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(), seconds=time.perf_counter() - start,
        )
        raise
    now = timezone.now()
    MetricsSnapshot.objects.filter(pk=snapshot_id, status=MetricsSnapshot.Status.RUNNING).update(
        status=MetricsSnapshot.Status.DONE, result=result, finished_at=now, heartbeat_at=now,
        seconds=time.perf_counter() - start,
    )
    MetricsSnapshot.objects.filter(
        project=snapshot.project, n_boot=snapshot.n_boot, seed=snapshot.seed, status=MetricsSnapshot.Status.DONE,
        finished_at__lt=now,
    ).exclude(pk=snapshot_id).delete()
    snapshot.refresh_from_db()
    return snapshot


def metrics_snapshots_resume() -> list[int]:
    """Snapshots left RUNNING by a worker that died go back to PENDING and are enqueued again."""
    from annotation.tasks import metrics_run_task

    return jobs.hand_back_abandoned(queryset=MetricsSnapshot.objects.all(), enqueue=metrics_run_task.delay)
