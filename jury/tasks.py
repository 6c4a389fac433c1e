"""Celery tasks of the jury. Thin and idempotent: they take primary keys and call services.

All are named ``jury.*`` so CELERY_TASK_ROUTES sends them to the ``gpu`` queue. This module is
imported by the web process (autodiscovery): it must not import torch, and it does not — the
services import the model backends only inside the chunk task's body.

Resumability: ``jury.run_chunk`` is acks_late (proven idempotent: verdicts are unique per run,
juror, target and order and inserted with conflicts ignored), and when a worker that consumes the
``gpu`` queue starts, ``annotation.jobs``' worker_ready handler runs ``jury.resume_runs`` (the
"jury-run" job kind registered below), which re-dispatches every pending/running run, so a run
whose worker was killed continues as soon as a worker is back. A chunk still leased by a dead
worker is retried after its lease ends (``annotation.jobs.lease_claim``).
"""
from __future__ import annotations

import logging

from celery import shared_task

from annotation.jobs import register_job_kind, register_worker_start_task, worker_identity

log = logging.getLogger(__name__)


@shared_task(name="jury.run_dispatch", ignore_result=True)
def run_dispatch_task(run_id: int) -> None:
    """Mark the run running and enqueue its unfinished chunks."""
    from jury import services

    for chunk_id in services.jury_run_dispatch(run_id=run_id):
        run_chunk_task.delay(chunk_id)


@shared_task(name="jury.run_chunk", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=200,
             ignore_result=True)
def run_chunk_task(self, chunk_id: int) -> None:
    """Judge one chunk. Idempotent: already-written verdicts are skipped."""
    from jury import services

    worker = worker_identity()
    state, wait = services.jury_chunk_claim(chunk_id=chunk_id, worker=worker)
    if state == "busy":
        # Another worker holds the lease (or a dead one did): look again when the lease ends.
        raise self.retry(countdown=wait)
    if state != "claimed":
        return
    services.jury_chunk_process(chunk_id=chunk_id, worker=worker)


@shared_task(name="jury.run_finalize", ignore_result=True)
def run_finalize_task(run_id: int) -> None:
    """Aggregate a run whose chunks are all done. Idempotent."""
    from jury import services

    services.jury_run_finalize(run_id=run_id)


@shared_task(name="jury.resume_runs", ignore_result=True)
def resume_runs_task() -> None:
    """Re-dispatch runs left unfinished by a dead worker (run when a gpu worker starts)."""
    from jury import services

    services.jury_runs_resume_all()


# Only workers that consume the gpu queue resume runs, so a web-only or import-only worker does not.
register_job_kind("jury-run", resume_task="jury.resume_runs", queue="gpu")


@shared_task(name="jury.prepare_models", ignore_result=True)
def prepare_models_task() -> list[str]:
    """Convert the packaged models that jurors use (once; later starts find them converted). Enqueued
    by every starting gpu worker, so the first run does not wait ten minutes at 0% (issue 13, 14)."""
    from django.conf import settings

    if not settings.JURY_PREPARE_MODELS_ON_START:
        return []
    from jury import services

    return services.packaged_models_prepare()


register_worker_start_task("jury.prepare_models", queue="gpu")
