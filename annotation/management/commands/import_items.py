"""``python manage.py import_items PATH --project SLUG [--format auto|tribunal|csv|hh-rlhf|oasst|aegis|csv-raters]
[--mapping MAPPING.json]``."""
from __future__ import annotations

import json
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.importing import FORMATS, import_file
from annotation.models import ImportBatch, Project


class Command(BaseCommand):
    help = (
        "Import items and responses (and imported judgments) from a file into a project. "
        "All or nothing: a file with any error stores nothing and every error is listed by line."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="JSONL, CSV or .jsonl.gz file")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", default="auto", choices=["auto", *FORMATS], dest="fmt")
        parser.add_argument("--user", help="username recorded as the importer")
        parser.add_argument("--mapping", help="JSON file: the column mapping of a CSV with one label column per rater "
                                              "(format csv-raters; see the README, Several raters)")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--background", action="store_true", help="run on the Celery worker even if small")
        mode.add_argument("--foreground", action="store_true", help="run here even if big")
        parser.add_argument("--wait", action="store_true", help="with a background import: wait for it to end")
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits (default 3600)")

    def handle(self, *args, path: str, project: str, fmt: str, user: str | None, background: bool,
               foreground: bool, wait: bool, timeout: float, mapping: str | None = None, **options) -> None:
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            target = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"no project with slug {project!r}") from None
        importer = None
        if user:
            try:
                importer = get_user_model().objects.get(username=user)
            except get_user_model().DoesNotExist:
                raise CommandError(f"no user {user!r}") from None
        import_options = {}
        if mapping:
            try:
                import_options["mapping"] = json.loads(Path(mapping).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read the mapping {mapping}: {exc}") from None
        run_in_background = True if background else (False if foreground else None)
        try:
            batch = import_file(
                project=target, path=file, source_name=file.name, fmt=fmt, user=importer, background=run_in_background,
                options=import_options,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if batch.status == ImportBatch.Status.PENDING:
            self.stdout.write(f"import #{batch.pk} queued for the worker ({batch.size_bytes} bytes)")
            if not wait:
                return
            batch = self._wait(batch, timeout)
        self._report(batch)

    def _wait(self, batch: ImportBatch, timeout: float) -> ImportBatch:
        deadline = time.monotonic() + timeout
        last = -1.0
        while time.monotonic() < deadline:
            batch.refresh_from_db()
            if batch.status in (ImportBatch.Status.DONE, ImportBatch.Status.FAILED):
                return batch
            if batch.progress - last >= 0.05:
                last = batch.progress
                self.stdout.write(f"  {batch.status}: {batch.progress:.0%}, {batch.records_read} records read")
            time.sleep(0.5)
        raise CommandError(f"import #{batch.pk} did not finish within {timeout:.0f} s (status {batch.status}); "
                           "is a worker running?")

    def _report(self, batch: ImportBatch) -> None:
        if batch.status == ImportBatch.Status.DONE:
            self.stdout.write(self.style.SUCCESS(
                f"import #{batch.pk} done ({batch.detected_format}): {batch.records_read} records read, "
                f"{batch.items_created} items created, {batch.items_skipped} skipped ({_skipped(batch)}), "
                f"{batch.responses_created} responses, {batch.annotations_created} imported annotations"
            ))
            return
        for error in batch.errors:
            self.stderr.write(f"line {error['line']}: {error['error']}")
        hidden = batch.error_count - len(batch.errors)
        if hidden > 0:
            self.stderr.write(f"... and {hidden} more errors")
        raise CommandError(
            f"import #{batch.pk} failed with {batch.error_count} error(s); nothing was stored"
        )


def _skipped(batch: ImportBatch) -> str:
    """The skipped records by reason: duplicates inside the file, items the project already had,
    rows the format leaves out on purpose (Aegis REDACTED prompts)."""
    detail = batch.skipped_detail or {}
    return (
        f"{detail.get('duplicates_in_file', 0)} duplicates in the file, "
        f"{detail.get('already_in_project', 0)} already in the project, "
        f"{detail.get('ignored', 0)} ignored (e.g. REDACTED)"
    )
