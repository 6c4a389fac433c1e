"""Celery interface for exports: thin and idempotent (the service claims the job)."""
from __future__ import annotations

from celery import shared_task

from annotation.jobs import register_job_kind


@shared_task(name="exports.run_export", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def export_run_task(export_id: int) -> None:
    """Run one export. acks_late is safe: the conditional claim makes a redelivery a no-op."""
    from exports import services

    services.export_run(export_id=export_id)


@shared_task(name="exports.resume", ignore_result=True)
def export_resume_task() -> None:
    """Re-queue exports left RUNNING by a worker that died (run when a worker starts)."""
    from exports import services

    services.export_jobs_resume()


# annotation.jobs' one worker_ready handler calls it on workers that consume the celery queue.
register_job_kind("export", resume_task="exports.resume", queue="celery")
