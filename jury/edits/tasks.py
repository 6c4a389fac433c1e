"""Celery tasks of edit runs, on the job kit (``annotation.jobs``): one task runs a whole run
(``jury.edits_run``, gpu queue like jury runs); ``jury.edits_resume`` hands back runs whose worker
died and enqueues pending ones (run when a gpu worker starts)."""
from __future__ import annotations

from celery import shared_task

from annotation.jobs import register_job_kind


@shared_task(name="jury.edits_run", ignore_result=True)
def edit_run_task(run_id: int) -> None:
    """Process one edit run. Idempotent: a run another worker holds is skipped, and a resumed run
    skips the sources it already edited."""
    from jury.edits import services

    services.edit_run_process(run_id=run_id)


@shared_task(name="jury.edits_resume", ignore_result=True)
def edit_runs_resume_task() -> None:
    from jury.edits import services

    services.edit_runs_resume_all()


register_job_kind("edit-run", resume_task="jury.edits_resume", queue="gpu")
