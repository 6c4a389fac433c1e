"""Who is running a background job, and whether they are still alive.

Background jobs (imports here; exports use it too) record the worker process that claimed them
(``host:pid``) and a heartbeat that their progress reports refresh. A job is abandoned when that
process is gone (same host: the pid no longer exists) or, for a claimant on another host, when
its heartbeat is older than ``stale_after``. Abandoned jobs are handed back to the queue when a
worker starts, so a worker killed with SIGKILL mid-job is followed by a clean rerun; the jobs are
written to be idempotent, so the rerun adds nothing twice.
"""
from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from django.utils import timezone


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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
