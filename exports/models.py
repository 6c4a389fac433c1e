"""Export jobs: one requested dataset export, its options, its progress and where its files are.

The data files themselves are written by ``exports.pipeline`` to a folder keyed by the export id
(``EXPORT_DIR/export-<id>/``), so a rerun of the same job overwrites instead of duplicating.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotation.jobs import JobStatus, job_status_field
from annotation.models import WorkerClaimed
from exports.options import FORMAT_SPECS, FORMATS


class Export(WorkerClaimed):
    # Built from exports.options.FORMAT_SPECS, the one list of formats: Format.DPO == "dpo", ...
    # Enum's functional API: django-stubs types ``TextChoices(...)`` only as a member lookup, so the
    # call is ignored; ``Format`` is still a TextChoices class at runtime.
    Format = models.TextChoices(  # type: ignore[call-overload]
        "Format", [(fmt.upper().replace("-", "_"), (fmt, spec.label)) for fmt, spec in FORMAT_SPECS.items()]
    )

    Status = JobStatus

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="exports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    format = models.CharField(max_length=32, choices=Format.choices)
    options = models.JSONField(default=dict, help_text="The validated, complete options (exports.options).")
    status = job_status_field()
    background = models.BooleanField(default=True, help_text="Runs on the Celery worker.")
    out_dir = models.CharField(max_length=1000, blank=True, help_text="Where the files are written.")
    items_total = models.PositiveIntegerField(default=0)
    items_done = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    manifest = models.JSONField(null=True, blank=True, help_text="A copy of manifest.json once done.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(format__in=list(FORMATS)),
                name="export_format_valid",
            ),
        ]
        indexes = [models.Index(fields=["project", "-created_at"], name="export_project_recent")]

    def __str__(self) -> str:
        return f"export #{self.pk} {self.format} of {self.project_id} ({self.status})"

    @property
    def progress(self) -> float:
        if self.status == self.Status.DONE:
            return 1.0
        return min(1.0, self.items_done / self.items_total) if self.items_total else 0.0

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
