"""Celery interface for exports: thin and idempotent (the service claims the job)."""
from __future__ import annotations

import random

from celery import shared_task

from annotation.jobs import register_job_kind

# A database that stays locked when the job is claimed (SQLite) retries the task this many times,
# after 5, 10, 20, 40, 80 s (with jitter); the job is still PENDING then, so nothing else would run it.
EXPORT_LOCK_RETRIES = 5


@shared_task(
    name="exports.run_export", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    max_retries=EXPORT_LOCK_RETRIES,
)
def export_run_task(self, export_id: int) -> None:
    """Run one export. acks_late is safe: the conditional claim makes a redelivery a no-op."""
    from exports import services

    try:
        services.export_run(export_id=export_id)
    except services.ExportInterrupted as exc:
        raise self.retry(exc=exc, countdown=5 * 2**self.request.retries + random.uniform(0, 2)) from exc


@shared_task(name="exports.resume", ignore_result=True)
def export_resume_task() -> None:
    """Re-queue exports left RUNNING by a worker that died (run when a worker starts)."""
    from exports import services

    services.export_jobs_resume()


# annotation.jobs' one worker_ready handler calls it on workers that consume the celery queue.
register_job_kind("export", resume_task="exports.resume", queue="celery")
