"""Who is running a background job, and whether they are still alive.

Background jobs (imports here; exports use it too) record the worker process that claimed them
(``host:pid``) and a heartbeat that their progress reports refresh. A job is abandoned when that
process is gone (same host: the pid no longer exists) or, for a claimant on another host, when
its heartbeat is older than ``stale_after``. Abandoned jobs are handed back to the queue when a
worker starts, so a worker killed with SIGKILL mid-job is followed by a clean rerun; the jobs are
written to be idempotent, so the rerun adds nothing twice.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(*, model, pk: int, pending: str, running: str, **extra: Any) -> bool:
    """Claim a PENDING job for this worker process with one conditional UPDATE.

    Only one caller can win (the row's status changes under it), so a duplicate task delivery or a
    second worker gets ``False`` and must leave the job alone. Records who claimed it and starts
    its heartbeat, which ``hand_back_abandoned`` reads.
    """
    now = timezone.now()
    updated = model.objects.filter(pk=pk, status=pending).update(
        status=running, started_at=now, heartbeat_at=now, claimed_by=worker_identity(), **extra
    )
    return updated == 1


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
    running: str,
    pending: str,
    enqueue: Callable[[int], None],
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
            transaction.on_commit(lambda pk=pk: enqueue(pk))
            handed_back.append(pk)
    return handed_back
