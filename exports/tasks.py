"""Celery interface for exports: thin and idempotent (the service claims the job)."""
from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready


@shared_task(name="exports.run_export", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def export_run_task(export_id: int) -> None:
    """Run one export. acks_late is safe: the conditional claim makes a redelivery a no-op."""
    from exports import services

    services.export_run(export_id=export_id)


@shared_task(name="exports.resume", ignore_result=True)
def export_resume_task() -> None:
    from exports import services

    services.export_jobs_resume()


@worker_ready.connect
def _resume_exports_on_worker_start(sender=None, **kwargs) -> None:
    """A (re)started worker re-queues exports left RUNNING by a worker that died."""
    export_resume_task.delay()
