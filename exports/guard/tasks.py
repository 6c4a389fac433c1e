"""Celery interface for guards: thin and idempotent (the service claims the job). Task names
start with ``exports.guard.`` so CELERY_TASK_ROUTES sends them to the ``gpu`` queue."""
from __future__ import annotations

from celery import shared_task

from annotation.jobs import register_job_kind


@shared_task(name="exports.guard.train", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def guard_train_task(training_id: int) -> None:
    """Train one guard. acks_late is safe: the conditional claim makes a redelivery a no-op, and
    a rerun writes the same deterministic folder (``GUARD_DIR/<name>-v<version>``)."""
    from exports.guard import services

    services.guard_training_run(training_id=training_id)


@shared_task(name="exports.guard.resume", ignore_result=True)
def guard_resume_task() -> None:
    """Re-queue guard trainings left RUNNING by a worker that died (run when a gpu worker starts)."""
    from exports.guard import services

    services.guard_jobs_resume()


@shared_task(name="exports.guard.evaluate", ignore_result=True)
def guard_evaluate_task(guard_model_id: int, project_slug: str) -> None:
    """Evaluate a guard on a project's current consensus and store the report on the guard."""
    from exports.guard import services

    services.guard_model_evaluate(guard_model_id=guard_model_id, data_name=f"project:{project_slug}",
                                  source_spec={"kind": "project", "slug": project_slug})


# Job kind four: annotation.jobs' one worker_ready handler resumes it on workers consuming ``gpu``.
register_job_kind("guard-training", resume_task="exports.guard.resume", queue="gpu")


@shared_task(name="exports.guard.evaluate_source", ignore_result=True)
def guard_evaluate_source_task(guard_model_id: int, data_name: str, source_spec: dict) -> None:
    """Evaluate a guard on an uploaded labelled file (staged by the page) and store the report."""
    from exports.guard import services

    services.guard_model_evaluate_staged(guard_model_id=guard_model_id, data_name=data_name, source_spec=source_spec)
