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


@shared_task(name="exports.guard.evaluate", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def guard_evaluate_task(evaluation_id: int, project_slug: str | None = None) -> None:
    """Run one evaluation job (job kind "guard-evaluation"); the conditional claim makes a
    redelivery a no-op, and a rerun stores the same report again. A message queued before
    evaluations were jobs carries (guard id, project slug): it becomes a job of its own."""
    from exports.guard import services

    if project_slug is not None:
        services.guard_evaluation_legacy(guard_model_id=evaluation_id, project_slug=project_slug)
        return
    services.guard_evaluation_run(evaluation_id=evaluation_id)


@shared_task(name="exports.guard.resume_evaluations", ignore_result=True)
def guard_resume_evaluations_task() -> None:
    """Re-queue guard evaluations left RUNNING by a worker that died (run when a gpu worker starts)."""
    from exports.guard import services

    services.guard_evaluations_resume()


# Job kinds four (trainings) and five (evaluations): annotation.jobs' one worker_ready handler
# resumes them on workers consuming ``gpu``.
register_job_kind("guard-training", resume_task="exports.guard.resume", queue="gpu")
register_job_kind("guard-evaluation", resume_task="exports.guard.resume_evaluations", queue="gpu")
