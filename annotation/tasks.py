"""Celery tasks of the annotation app: interfaces only, the work is in the services."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="annotation.import_run")
def import_run_task(batch_id: int) -> None:
    """Run a background import batch.

    Idempotent: ``import_batch_run`` claims the batch with a conditional UPDATE (pending →
    running), so a redelivered message, or a second worker, does nothing. A batch that fails ends
    FAILED with its errors; it is never retried automatically (an import is all or nothing, so a
    retry would only repeat the same errors).
    """
    from annotation.importing import import_batch_run

    import_batch_run(batch_id=batch_id)
