"""Celery tasks of the annotation app: interfaces only, the work is in the services."""
from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready


@shared_task(name="annotation.import_run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def import_run_task(batch_id: int) -> None:
    """Run a background import batch.

    Idempotent: ``import_batch_run`` claims the batch with a conditional UPDATE (pending →
    running), so a redelivered message, or a second worker, does nothing. A batch that fails ends
    FAILED with its errors; it is never retried automatically (an import is all or nothing, so a
    retry would only repeat the same errors). acks_late is safe for the same reason, and a batch
    whose worker was killed mid-run is handed back by ``import_resume_task`` (see below).
    """
    from annotation.importing import import_batch_run

    import_batch_run(batch_id=batch_id)


@shared_task(name="annotation.import_resume", ignore_result=True)
def import_resume_task() -> None:
    from annotation.importing import import_batches_resume

    import_batches_resume()


@worker_ready.connect
def _resume_imports_on_worker_start(sender=None, **kwargs) -> None:
    """A (re)started worker re-queues imports left RUNNING by a worker that died."""
    import_resume_task.delay()
