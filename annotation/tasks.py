"""Celery tasks of the annotation app: interfaces only, the work is in the services."""
from __future__ import annotations

import random

from celery import shared_task

from annotation.jobs import register_job_kind


class ImportFailed(Exception):
    """A background import ended FAILED on an internal error (not on errors in the file)."""


# A lock conflict that outlives the per-statement retries sends the batch back to the queue this
# many times, after 5, 10, 20, 40, 80 s (with jitter), before it is recorded as failed.
IMPORT_LOCK_RETRIES = 5


@shared_task(
    name="annotation.import_run", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    max_retries=IMPORT_LOCK_RETRIES,
)
def import_run_task(self, batch_id: int) -> str:
    """Run a background import batch; returns a one-line outcome that Celery logs.

    Idempotent: ``import_batch_run`` claims the batch with a conditional UPDATE (pending →
    running), so a redelivered message, or a second worker, does nothing. A file with errors ends
    FAILED with its errors and is not retried (an import is all or nothing, so a retry would only
    repeat them): the task did its job and says so in its result. A lock conflict puts the batch
    back to PENDING and retries the task with backoff; an internal error ends the batch FAILED and
    raises, so Celery's log and the batch agree. acks_late is safe for the same reasons, and a
    batch whose worker was killed mid-run is handed back by ``import_resume_task`` (see below).
    """
    from annotation.importing import import_batch_run
    from annotation.importing.service import ImportInterrupted

    last_try = self.request.retries >= self.max_retries
    try:
        batch = import_batch_run(batch_id=batch_id, requeue_on_lock=not last_try)
    except ImportInterrupted as exc:
        raise self.retry(exc=exc, countdown=5 * 2**self.request.retries + random.uniform(0, 2)) from exc
    if batch is None:
        return f"import batch {batch_id}: already claimed elsewhere; nothing to do"
    if batch.status == batch.Status.DONE:
        return f"import batch {batch_id}: done, {batch.items_created} items, {batch.items_skipped} skipped"
    internal = [e["error"] for e in batch.errors if str(e.get("error", "")).startswith("internal error")]
    if internal:
        raise ImportFailed(f"import batch {batch_id} failed: {internal[0]}")
    return f"import batch {batch_id}: the file has {batch.error_count} errors; nothing stored"


@shared_task(name="annotation.import_resume", ignore_result=True)
def import_resume_task() -> None:
    """Re-queue imports left RUNNING by a worker that died (run when a worker starts)."""
    from annotation.importing import import_batches_resume

    import_batches_resume()


# annotation.jobs' one worker_ready handler calls it on workers that consume the celery queue.
register_job_kind("import", resume_task="annotation.import_resume", queue="celery")


@shared_task(name="annotation.metrics_run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def metrics_run_task(snapshot_id: int) -> str:
    """Compute a project's metrics snapshot (big projects; see ``annotation.metrics.services``).
    Idempotent: the snapshot is claimed with a conditional UPDATE, so a redelivery does nothing."""
    from annotation.metrics.services import metrics_snapshot_run

    snapshot = metrics_snapshot_run(snapshot_id=snapshot_id)
    if snapshot is None:
        return f"metrics snapshot {snapshot_id}: already claimed elsewhere; nothing to do"
    return f"metrics snapshot {snapshot_id}: {snapshot.status} in {snapshot.seconds or 0:.1f} s"


@shared_task(name="annotation.metrics_resume", ignore_result=True)
def metrics_resume_task() -> None:
    """Re-queue metrics snapshots left RUNNING by a worker that died (run when a worker starts)."""
    from annotation.metrics.services import metrics_snapshots_resume

    metrics_snapshots_resume()


register_job_kind("metrics", resume_task="annotation.metrics_resume", queue="celery")
