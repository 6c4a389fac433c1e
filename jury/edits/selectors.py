"""Reads of edit runs for pages, the API and the command."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from annotation.models import Project
from jury.edits.models import Edit, EditRun


def run_list(*, project: Project) -> QuerySet[EditRun]:
    return EditRun.objects.filter(project=project).select_related("editor", "template", "created_by")


def run_get(*, project: Project, pk: int) -> EditRun:
    run = run_list(project=project).filter(pk=pk).first()
    if run is None:
        raise Http404("No such edit run.")
    return run


def run_edits(*, run: EditRun) -> QuerySet[Edit]:
    return (Edit.objects.filter(run=run)
            .select_related("source_response", "edited_response", "review_item", "item")
            .order_by("id"))


def run_progress(*, run: EditRun) -> dict:
    return {
        "status": run.status, "total": run.total, "processed": run.processed, "kept": run.kept_count,
        "discarded": run.discarded_count, "failed": run.failed_count, "fraction": run.progress,
        "percent": round(100 * run.progress), "error": run.error,
    }
