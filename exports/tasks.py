"""Celery interface for exports: thin and idempotent (the service claims the job)."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="exports.run_export")
def export_run_task(export_id: int) -> None:
    from exports import services

    services.export_run(export_id=export_id)
