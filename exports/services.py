"""Writes for exports: request a job, run it.

``export_request`` validates the options (a bad option is an :class:`ExportOptionsError` before any
job exists) and, for background jobs, enqueues the worker after commit. ``export_run`` claims the
job with a conditional UPDATE, streams the dataset to the job's deterministic folder and records
the outcome; running it twice is harmless (the second call finds the job claimed and returns).
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from annotation import jobs
from annotation.dbretry import is_lock_error
from annotation.importing.formats.records import CategoryMap, RecordError
from annotation.jobs import claim, hand_back_abandoned
from annotation.models import Project
from exports.models import Export
from exports.options import ExportOptions, as_list, build_options


class ExportInterrupted(Exception):
    """The job could not be claimed because the database stayed locked past every retry (SQLite: a
    long writer held the file). It is still PENDING, which no resumer re-queues: the task retries."""


def export_root() -> Path:
    return Path(settings.EXPORT_DIR)


def export_default_dir(export_id: int) -> Path:
    """Deterministic per job: a rerun of job N overwrites ``export-N`` instead of adding a copy."""
    return export_root() / f"export-{export_id}"


def export_options_validate(*, project: Project, raw: dict[str, Any]) -> ExportOptions:
    """``categories`` may name a category by code, name or alias (case-insensitive), as the
    importer reads them; the options store codes. An unknown one is an error naming the codes."""
    version = project.taxonomy_version
    codes = set(version.categories.values_list("code", flat=True))
    if raw.get("categories") not in (None, "", [], ()):
        names = as_list(raw["categories"], "categories")
        resolver = CategoryMap.for_version(version)
        resolved = []
        for name in names:
            try:
                resolved.extend(resolver.resolve([str(name).strip()]))
            except RecordError:
                resolved.append(str(name).strip())  # build_options reports it with the known codes
        raw = {**raw, "categories": resolved}
    return build_options(raw, category_codes=codes)


@transaction.atomic
def export_request(
    *,
    project: Project,
    user=None,
    options: dict[str, Any],
    background: bool = True,
    out_dir: Path | None = None,
) -> Export:
    """Create an export job. Background jobs are enqueued on the worker after commit; the caller
    of a foreground job runs ``export_run`` itself (``manage.py export_dataset`` does)."""
    validated = export_options_validate(project=project, raw=options)
    export = Export.objects.create(
        project=project,
        created_by=user if user is not None and user.is_authenticated else None,
        format=validated.format,
        options=validated.to_dict(),
        background=background,
        out_dir=str(out_dir) if out_dir else "",
    )
    if not out_dir:
        export.out_dir = str(export_default_dir(export.pk))
        export.save(update_fields=["out_dir"])
    if background:
        from exports.tasks import export_run_task

        export_run_task.delay_on_commit(export.pk)
    return export


def export_run(*, export_id: int) -> Export | None:
    """Run one export job to the end. Idempotent: only a PENDING job is claimed (conditional
    UPDATE), so a duplicate delivery of the task does nothing.

    Not wrapped in one transaction on purpose: the job streams for minutes and writes its progress
    as it goes, so the page can show it; each statement commits on its own.
    """
    from exports.pipeline import ExportEmptyError, run_export

    try:
        claimed = claim(
            model=Export, pk=export_id, pending=Export.Status.PENDING, running=Export.Status.RUNNING, error=""
        )
    except DatabaseError as exc:
        if is_lock_error(exc):
            raise ExportInterrupted(f"export {export_id} could not be claimed: {exc}") from exc
        raise
    if not claimed:
        return Export.objects.filter(pk=export_id).first()
    export = Export.objects.select_related("project__taxonomy_version__taxonomy").get(pk=export_id)
    options = build_options(export.options)

    def progress(items_done: int, items_total: int, rows: int) -> None:
        jobs.progress(model=Export, pk=export_id, items_done=items_done, items_total=items_total, rows_written=rows)

    try:
        manifest = run_export(project=export.project, options=options, out_dir=Path(export.out_dir), progress=progress)
    except ExportEmptyError as exc:
        _finish(export_id, status=Export.Status.FAILED, error=str(exc))
    except Exception as exc:  # a poisoned job must end FAILED, not crash-loop or hang in RUNNING
        _finish(export_id, status=Export.Status.FAILED, error=f"Export failed: {type(exc).__name__}: {exc}")
        raise
    else:
        _finish(
            export_id, status=Export.Status.DONE, manifest=manifest, rows_written=manifest["counts"]["rows_total"]
        )
    return Export.objects.get(pk=export_id)


def export_jobs_resume(*, stale_after_s: int | None = None) -> list[int]:
    """Re-queue background exports whose worker died mid-run (called when a worker starts).

    A rerun is safe: the job writes to its own deterministic folder and rewrites every file, and
    the same data and options give the same bytes.
    """
    from exports.tasks import export_run_task

    return hand_back_abandoned(
        queryset=Export.objects.filter(background=True),
        running=Export.Status.RUNNING,
        pending=Export.Status.PENDING,
        enqueue=export_run_task.delay,
        stale_after=timedelta(seconds=stale_after_s) if stale_after_s is not None else None,
        reset={"items_done": 0, "rows_written": 0},
    )


def _finish(export_id: int, *, status: str, error: str = "", manifest: dict | None = None, rows_written: int | None = None) -> None:
    fields: dict[str, Any] = {"status": status, "error": error, "finished_at": timezone.now()}
    if manifest is not None:
        fields["manifest"] = manifest
    if rows_written is not None:
        fields["rows_written"] = rows_written
    Export.objects.filter(pk=export_id).update(**fields)
