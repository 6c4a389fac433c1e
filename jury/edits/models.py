"""Edit templates, edit runs and edits (SYNFAC-EDIT, REFERENCE §3).

- An ``EditTemplate`` is one version of an editor prompt, for one direction. It never changes:
  editing a template stores a new version (``services.template_revise``).
- An ``EditRun`` asks one editor (a ``jury.ModelSpec``) to edit the responses of a project's judge
  items in one direction. It is a job on the job kit (``annotation.jobs``): claimed by one worker,
  resumable after the worker dies (the edits already stored are skipped), cancellable.
- An ``Edit`` is one source response edited once in one run (unique per run and source, so a resumed
  run never duplicates). A kept edit has its edited ``Response`` (origin ``edited``) and the
  ``edit_review`` item that asks humans to accept, reject or fix it; a discarded one has the reason.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotation.jobs import ACTIVE, JobStatus, job_status_field
from annotation.models import ImmutableError, Item, Project, Response, WorkerClaimed
from jury.models import ModelSpec


class Direction(models.TextChoices):
    IMPROVE = "improve", "Improve (low → high)"
    CORRUPT = "corrupt", "Corrupt (high → low)"


class EditTemplate(models.Model):
    """One immutable version of an editor prompt. ``text`` is a ``str.format`` template with the
    fields ``{prompt}``, ``{response}``, ``{feedback}`` and ``{max_extra_words}``."""

    name = models.SlugField(max_length=100)
    direction = models.CharField(max_length=16, choices=Direction.choices)
    version = models.PositiveIntegerField(default=1)
    text = models.TextField()
    notes = models.TextField(blank=True, help_text="What changed in this version.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="edittemplate_unique_version")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableError("Edit templates are immutable; editing one stores a new version.")
        super().save(*args, **kwargs)


class EditRun(WorkerClaimed):
    """One editor editing a project's responses in one direction (a job on the job kit).

    ``options``: ``feedback`` (the sources for improve: rationales, categories, principles,
    instruction), ``instruction``, ``max_extra_words``, ``min_ratio`` / ``max_ratio`` (the kept band
    of the word-level edit distance ratio), ``seed``, ``batch_size``, ``limit``, ``item_ids``,
    ``max_new_tokens``, ``temperature``. ``editor_spec`` is a copy of the editor's model spec as it
    was at the start, so editing the spec never changes a run already started."""

    Status = JobStatus
    ACTIVE = ACTIVE

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="edit_runs")
    editor = models.ForeignKey(ModelSpec, on_delete=models.PROTECT, related_name="edit_runs")
    editor_spec = models.JSONField(default=dict, blank=True)
    direction = models.CharField(max_length=16, choices=Direction.choices)
    template = models.ForeignKey(EditTemplate, on_delete=models.PROTECT, related_name="runs")
    options = models.JSONField(default=dict, blank=True)
    status = job_status_field()
    total = models.PositiveIntegerField(default=0, help_text="Source responses to edit.")
    processed = models.PositiveIntegerField(default=0)
    kept_count = models.PositiveIntegerField(default=0)
    discarded_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True, help_text="load_s, generate_s, edits_per_s.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"edit run #{self.pk} {self.direction} of {self.project_id}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def progress(self) -> float:
        if self.status == JobStatus.DONE:
            return 1.0
        return min(1.0, self.processed / self.total) if self.total else 0.0


class Edit(models.Model):
    class Status(models.TextChoices):
        KEPT = "kept", "Kept for review"
        DISCARDED = "discarded", "Discarded"

    run = models.ForeignKey(EditRun, on_delete=models.CASCADE, related_name="edits")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="synthetic_edits")
    source_response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="synthetic_edits")
    edited_response = models.OneToOneField(
        Response, on_delete=models.PROTECT, null=True, blank=True, related_name="synthetic_edit"
    )
    review_item = models.OneToOneField(
        Item, on_delete=models.PROTECT, null=True, blank=True, related_name="synthetic_edit"
    )
    direction = models.CharField(max_length=16, choices=Direction.choices)
    feedback = models.JSONField(default=dict, blank=True, help_text="What drove the edit: {source: text}.")
    raw_output = models.TextField(blank=True)
    operations = models.JSONField(default=list, blank=True, help_text="The edits the model listed, if any.")
    parse_mode = models.CharField(max_length=32, blank=True, help_text="How the output was read (marker, recovered...).")
    status = models.CharField(max_length=16, choices=Status.choices)
    discard_reason = models.CharField(max_length=300, blank=True)
    word_distance = models.FloatField(null=True, blank=True, help_text="Word-level edit distance / source words.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "source_response"], name="edit_once_per_run_source"),
            models.CheckConstraint(
                condition=(Q(status="kept") & Q(edited_response__isnull=False) & Q(discard_reason=""))
                | (Q(status="discarded") & Q(edited_response__isnull=True) & ~Q(discard_reason="")),
                name="edit_kept_has_response_discard_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"edit {self.pk} of response {self.source_response_id} ({self.status})"
