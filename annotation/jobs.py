"""The job kit: how every background job is claimed, leased, watched, handed back and resumed.

One kit for every kind of background job: imports, exports, jury runs, guard training and guard
evaluation (synthetic-edit runs next). A job is a row with a :class:`JobStatus` ``status``; a job
that a whole worker runs inherits ``annotation.models.WorkerClaimed`` (who claimed it, last
heartbeat); a job split into chunks that several workers share leases each chunk instead.

- :class:`JobStatus`: pending → running → done | failed | cancelled (the stored values of every job).
- :func:`claim`: one conditional UPDATE pending → running; only one caller wins.
- :func:`heartbeat` / :func:`progress`: refresh ``heartbeat_at`` with the progress fields.
- :func:`lease_claim` / :func:`lease_renew`: claim a chunk for ``lease_s`` seconds; a chunk whose
  lease ran out (its worker died) can be claimed again. Jury chunks use ``JURY_CHUNK_LEASE_S``.
- :func:`hand_back_abandoned`: RUNNING jobs whose claimant is gone go back to PENDING, re-enqueued.
- :func:`cancel`: pending/running → cancelled with one conditional UPDATE.
- :func:`register_job_kind` and the ONE ``worker_ready`` handler (:func:`resume_on_worker_start`):
  a (re)started worker enqueues the resume task of every registered kind whose queue it consumes.

Job kinds register in their app's ``tasks.py`` (autodiscovered by every worker)::

    register_job_kind("import", resume_task="annotation.import_resume", queue="celery")
    register_job_kind("export", resume_task="exports.resume", queue="celery")
    register_job_kind("jury-run", resume_task="jury.resume_runs", queue="gpu")
    register_job_kind("guard-training", resume_task="exports.guard.resume", queue="gpu")
    register_job_kind("guard-evaluation", resume_task="exports.guard.resume_evaluations", queue="gpu")

A new kind needs no new machinery: a model ``X(WorkerClaimed)`` with ``status = job_status_field()``,
a task that calls ``claim(model=X, pk=pk)`` and ``progress(...)`` as it goes, a resume service that
calls ``hand_back_abandoned(queryset=X.objects.all(), enqueue=x_task.delay)``, and its
``register_job_kind`` line (synthetic-edit runs: ``"edit-run"``, chunks with ``lease_claim``).

A job is abandoned when the worker process that claimed it is gone (same host: the pid no longer
exists) or, for a claimant on another host, when its heartbeat is older than ``stale_after``.
Abandoned jobs are handed back when a worker starts, so a worker killed with SIGKILL mid-job is
followed by a clean rerun; the jobs are written to be idempotent, so the rerun adds nothing twice.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery.signals import worker_ready
from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation.dbretry import retry_on_lock

logger = logging.getLogger(__name__)


class JobStatus(models.TextChoices):
    """The status of every background job and chunk (the stored values never change)."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE = (JobStatus.PENDING, JobStatus.RUNNING)


def job_status_field(**kwargs: Any) -> models.CharField:
    """The ``status`` column of a job model."""
    return models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, **kwargs)


def worker_identity() -> str:
    """``host:pid`` of this worker process: what a job's ``claimed_by`` and a chunk's ``worker`` hold."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --- whole jobs: claim, heartbeat, cancel ---------------------------------------------------------


@retry_on_lock
def claim(*, model, pk: int, pending: str = JobStatus.PENDING, running: str = JobStatus.RUNNING, **extra: Any) -> bool:
    """Claim a PENDING job for this worker process with one conditional UPDATE.

    Only one caller can win (the row's status changes under it), so a duplicate task delivery or a
    second worker gets ``False`` and must leave the job alone. Records who claimed it and starts
    its heartbeat, which ``hand_back_abandoned`` reads. A lock conflict (SQLite held by another
    writer past its busy timeout) is retried a few times (``annotation.dbretry``); after the last
    try the error reaches the caller, whose task must retry: a PENDING job is not resumed by anyone.
    """
    now = timezone.now()
    updated = model.objects.filter(pk=pk, status=pending).update(
        status=running, started_at=now, heartbeat_at=now, claimed_by=worker_identity(), **extra
    )
    return updated == 1


def heartbeat(*, model, pk: int, **progress_fields: Any) -> None:
    """Refresh a claimed job's heartbeat, with any progress fields (one UPDATE, no read)."""
    model.objects.filter(pk=pk).update(heartbeat_at=timezone.now(), **progress_fields)


progress = heartbeat  # a progress report is a heartbeat that carries numbers


def cancel(*, model, pk: int, **extra: Any) -> bool:
    """Cancel a pending or running job with one conditional UPDATE; False when it was not active.
    Its workers notice at their next check of the status and stop; work already done stays."""
    return model.objects.filter(pk=pk, status__in=ACTIVE).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now(), **extra
    ) == 1


# --- chunks: leases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseClaim:
    """The answer of :func:`lease_claim`: ``state`` is "claimed", "busy" (another worker holds the
    lease; look again after ``wait_s``) or "skip" (done, failed, gone, or its job is not running)."""

    state: str
    wait_s: float = 0.0


def lease_claim(*, model, pk: int, lease_s: float, worker: str | None = None, only_if: Q | None = None) -> LeaseClaim:
    """Claim a chunk for ``lease_s`` seconds with one conditional UPDATE.

    The chunk model has ``status``, ``lease_until``, ``worker`` and ``attempts``. A PENDING chunk, or a
    RUNNING one whose lease has run out (its worker died), is claimed; ``attempts`` counts claims, so
    a chunk that kills its workers can be given up. ``only_if`` adds a condition (e.g. its run is
    RUNNING) that must hold to claim, and to be "busy" rather than "skip".
    """
    now = timezone.now()
    worker = (worker or worker_identity())[: model._meta.get_field("worker").max_length]
    guard = only_if if only_if is not None else Q()
    n = (
        model.objects.filter(guard, pk=pk)
        .filter(Q(status=JobStatus.PENDING) | Q(status=JobStatus.RUNNING, lease_until__lt=now))
        .update(status=JobStatus.RUNNING, lease_until=now + timedelta(seconds=lease_s), worker=worker,
                attempts=F("attempts") + 1)
    )
    if n == 1:
        return LeaseClaim("claimed")
    chunk = model.objects.filter(guard, pk=pk).values("status", "lease_until").first()
    if chunk is None or chunk["status"] != JobStatus.RUNNING:
        return LeaseClaim("skip")
    if chunk["lease_until"] is None:
        return LeaseClaim("busy", 1.0)
    return LeaseClaim("busy", max(1.0, (chunk["lease_until"] - now).total_seconds() + 1))


def lease_renew(*, model, pk: int, lease_s: float, worker: str | None = None) -> bool:
    """Extend this worker's lease on a RUNNING chunk; False when the chunk is no longer its own."""
    worker = (worker or worker_identity())[: model._meta.get_field("worker").max_length]
    return model.objects.filter(pk=pk, worker=worker, status=JobStatus.RUNNING).update(
        lease_until=timezone.now() + timedelta(seconds=lease_s)
    ) == 1


# --- hand-back of abandoned jobs ---------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def claimant_is_gone(claimed_by: str, heartbeat_at: datetime | None, *, stale_after: timedelta) -> bool:
    host, _, pid = claimed_by.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return int(pid) != os.getpid() and not _pid_alive(int(pid))
    return heartbeat_at is None or heartbeat_at < timezone.now() - stale_after


def hand_back_abandoned(
    *,
    queryset,
    enqueue: Callable[[int], None],
    running: str = JobStatus.RUNNING,
    pending: str = JobStatus.PENDING,
    stale_after: timedelta | None = None,
    reset: dict[str, Any] | None = None,
) -> list[int]:
    """Put RUNNING jobs whose claimant is gone back to PENDING and enqueue them again.

    ``queryset`` selects the candidate jobs (a model with ``status``, ``claimed_by`` and
    ``heartbeat_at``). The hand-back is a conditional UPDATE on the same status and claimant, so two
    workers starting at once cannot both re-queue one job; ``enqueue(pk)`` runs after commit.
    ``reset`` names progress fields to clear. ``stale_after`` defaults to ``JOB_STALE_SECONDS``.
    Returns the ids handed back.
    """
    if stale_after is None:
        stale_after = timedelta(seconds=settings.JOB_STALE_SECONDS)
    handed_back: list[int] = []
    for pk, claimed_by, heartbeat_at in queryset.filter(status=running).values_list("pk", "claimed_by", "heartbeat_at"):
        if not claimant_is_gone(claimed_by, heartbeat_at, stale_after=stale_after):
            continue
        updated = queryset.model.objects.filter(pk=pk, status=running, claimed_by=claimed_by).update(
            status=pending, claimed_by="", **(reset or {})
        )
        if updated == 1:
            logger.warning("%s %s was abandoned by %s; queued again", queryset.model.__name__, pk, claimed_by)
            transaction.on_commit(partial(enqueue, pk))
            handed_back.append(pk)
    return handed_back


# --- resumable job kinds and the one worker_ready handler --------------------------------------------


@dataclass(frozen=True)
class JobKind:
    name: str
    resume_task: str  # the registered Celery task name that hands back / re-dispatches this kind's jobs
    queue: str  # only a worker consuming this queue resumes this kind


_KINDS: dict[str, JobKind] = {}


def register_job_kind(name: str, *, resume_task: str, queue: str = "celery") -> JobKind:
    """Register a resumable job kind (idempotent for the same definition)."""
    kind = JobKind(name=name, resume_task=resume_task, queue=queue)
    existing = _KINDS.get(name)
    if existing is not None and existing != kind:
        raise ValueError(f"Job kind {name!r} is already registered differently: {existing}")
    _KINDS[name] = kind
    return kind


_START_TASKS: dict[str, str] = {}  # task name -> queue: enqueued once by each starting worker of that queue


def register_worker_start_task(task_name: str, *, queue: str) -> None:
    """Something a worker of ``queue`` does once when it starts, beside resuming jobs (e.g. the jury's
    conversion of packaged models). The task decides for itself whether there is anything to do."""
    _START_TASKS[task_name] = queue


def job_kinds() -> list[JobKind]:
    return list(_KINDS.values())


def kinds_to_resume(consumed_queues: set[str]) -> list[JobKind]:
    """The kinds a worker consuming these queues resumes (all of them when the queues are unknown)."""
    return [k for k in _KINDS.values() if not consumed_queues or k.queue in consumed_queues]


def _consumed_queues(sender: Any) -> set[str]:
    try:
        return {q.name for q in sender.app.amqp.queues.consume_from.values()} if sender else set()
    except Exception:  # pragma: no cover - defensive: never break worker start-up
        return set()


@worker_ready.connect
def resume_on_worker_start(sender: Any = None, **kwargs: Any) -> list[str]:
    """A (re)started worker enqueues the resume task of every kind whose queue it consumes, so jobs
    left RUNNING by a dead worker continue (jury runs only where a ``gpu`` queue is consumed)."""
    from celery import current_app

    app = sender.app if sender is not None else current_app
    started = []
    queues = _consumed_queues(sender)
    for kind in kinds_to_resume(queues):
        app.tasks[kind.resume_task].delay()  # routed by CELERY_TASK_ROUTES like any call
        started.append(kind.name)
    for task_name, queue in _START_TASKS.items():
        if not queues or queue in queues:
            app.tasks[task_name].delay()
            started.append(task_name)
    return started
