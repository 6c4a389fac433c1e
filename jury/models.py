"""Jurors, juries, jury runs, verdicts and decisions.

- A ``ModelSpec`` is one model: a registered backend kind (a local Hugging Face folder, a packaged
  model, an OpenAI-compatible server, ...) + the model + dtype, device, batch size, max length and
  chat template. Jurors use it today; synthetic editors and guards are meant to use it too.
- A ``Juror`` is one judge: a model spec + a prompt template version.
- A ``Jury`` is a panel of jurors (with weights) and an aggregation rule with thresholds.
- A ``JuryRun`` judges every item of a project for one task. It is split into ``JuryChunk`` rows
  that Celery tasks claim; each ``Verdict`` is stored once (unique on run, juror, target, order),
  so a rerun or a restarted worker skips work that is already done.
- A ``JuryDecision`` is the panel's aggregated answer for one item and task, with the rule named;
  for safety and preference it links the append-only ``Annotation(source="jury")`` it wrote.

Verdicts and decisions are written once and never updated (the services only insert them).
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotation.jobs import ACTIVE, JobStatus, job_status_field
from annotation.models import Annotation, Item, Principle, Project, Response


class Task(models.TextChoices):
    SAFETY = "safety", "Safety"
    PREFERENCE = "preference", "Preference"
    PRINCIPLES = "principles", "Principles"


class ModelSpec(models.Model):
    """Which model, where it is and how it is loaded: one row that jurors (and next, synthetic
    editors and guards) point at. The backend kinds are a registry (``jury/backends/registry.py``),
    not choices: a new kind (a guard classifier, an editor) registers there and is valid here.

    ``as_dict()`` is the plain data a worker builds the backend from; a run stores a copy of it, so
    editing a spec never changes a run already started.
    """

    class Dtype(models.TextChoices):
        AUTO = "auto", "auto (half on CUDA, float32 on CPU)"
        FLOAT32 = "float32", "float32"
        FLOAT16 = "float16", "float16"
        BFLOAT16 = "bfloat16", "bfloat16"

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    backend = models.CharField(max_length=32, help_text="A registered backend kind: packaged | transformers | openai | ...")
    model = models.CharField(
        max_length=500,
        help_text="packaged: smollm2-135m-instruct | gemma3-270m; transformers: a local folder; "
        "openai: the model name the server expects.",
    )
    endpoint = models.URLField(max_length=500, blank=True, help_text="openai backend: base URL, e.g. http://host:8000/v1")
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="openai backend: name of the environment variable holding the API key."
    )
    use_chat_template = models.BooleanField(
        default=True, help_text="Wrap prompts in the tokenizer's chat template when it has one."
    )
    dtype = models.CharField(max_length=16, choices=Dtype.choices, default=Dtype.AUTO)
    device = models.CharField(max_length=32, blank=True, help_text="auto | cpu | cuda | cuda:N; blank = TRIBUNAL_DEVICE.")
    batch_size = models.PositiveSmallIntegerField(default=8)
    max_length = models.PositiveIntegerField(default=1024, help_text="Most tokens in one context.")
    timeout_s = models.FloatField(default=60.0, help_text="openai backend: seconds per HTTP request.")
    max_retries = models.PositiveSmallIntegerField(default=3, help_text="openai backend: retries of transient errors.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = "model spec"
        constraints = [
            models.CheckConstraint(condition=Q(batch_size__gte=1), name="modelspec_batch_size_positive"),
            models.CheckConstraint(condition=Q(max_length__gte=64), name="modelspec_max_length_min"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from jury.backends.registry import spec_errors

        errors = spec_errors(self.as_dict())
        if errors:
            raise ValidationError(errors)

    def as_dict(self) -> dict:
        """Everything a worker needs to build the backend (plain data, no model instance).
        ``dtype`` is left out when "auto", so specs stored by runs before it existed read the same."""
        data = {
            "backend": self.backend,
            "model": self.model,
            "endpoint": self.endpoint,
            "api_key_env": self.api_key_env,
            "use_chat_template": self.use_chat_template,
            "device": self.device,
            "batch_size": self.batch_size,
            "max_length": self.max_length,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
        }
        if self.dtype and self.dtype != self.Dtype.AUTO:
            data["dtype"] = self.dtype
        return data


# The fields of ModelSpec that describe the model (everything but its own name and bookkeeping).
MODEL_SPEC_FIELDS = ("backend", "model", "endpoint", "api_key_env", "use_chat_template", "dtype", "device",
                     "batch_size", "max_length", "timeout_s", "max_retries")


class Juror(models.Model):
    """A member of panels: a model spec + the prompt template version it is asked with."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    model_spec = models.ForeignKey(ModelSpec, on_delete=models.PROTECT, related_name="jurors")
    prompt_version = models.CharField(max_length=16, default="v1", help_text="Prompt template version (see jury/prompts.py).")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from jury import prompts

        if self.prompt_version not in prompts.VERSIONS:
            raise ValidationError({"prompt_version": f"Unknown prompt version; choose one of {list(prompts.VERSIONS)}."})

    def spec(self) -> dict:
        """The model spec as plain data, named after the juror (what a run stores per juror)."""
        return {"name": self.name, **self.model_spec.as_dict()}


class Jury(models.Model):
    class Rule(models.TextChoices):
        MAJORITY = "majority", "Majority vote"
        MEAN = "mean", "Mean probability"
        WEIGHTED = "weighted", "Weighted mean probability"
        UNANIMOUS = "unanimous", "Unanimous, else human"

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    jurors = models.ManyToManyField(Juror, through="JuryMember", related_name="juries")
    rule = models.CharField(max_length=16, choices=Rule.choices, default=Rule.MEAN)
    threshold = models.FloatField(default=0.5, help_text="P(unsafe) / P(first better) at or above which the label is positive.")
    caution_low = models.FloatField(default=0.35, help_text="Safety: P(unsafe) in [low, high) is 'needs caution'.")
    caution_high = models.FloatField(default=0.65)
    category_threshold = models.FloatField(default=0.5, help_text="Safety: P(category | unsafe) for a category to be named.")
    min_confidence = models.FloatField(
        default=0.7, help_text="Decisions less confident than this are escalated to humans."
    )
    escalate_on_split = models.BooleanField(default=True, help_text="Escalate when jurors disagree on the label.")
    escalation_priority = models.IntegerField(default=10, help_text="Item.priority given to escalated items (plus up to 10 for doubt).")
    chunk_size = models.PositiveIntegerField(default=16, help_text="Items per Celery chunk.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "juries"
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gte=0) & Q(threshold__lte=1), name="jury_threshold_01"),
            models.CheckConstraint(
                condition=Q(caution_low__gte=0) & Q(caution_low__lte=models.F("caution_high")) & Q(caution_high__lte=1),
                name="jury_caution_band",
            ),
            models.CheckConstraint(condition=Q(min_confidence__gte=0) & Q(min_confidence__lte=1), name="jury_min_conf_01"),
            models.CheckConstraint(condition=Q(chunk_size__gte=1), name="jury_chunk_size_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class JuryMember(models.Model):
    jury = models.ForeignKey(Jury, on_delete=models.CASCADE, related_name="members")
    juror = models.ForeignKey(Juror, on_delete=models.PROTECT, related_name="memberships")
    weight = models.FloatField(default=1.0)

    class Meta:
        ordering = ["jury", "juror__name"]
        constraints = [
            models.UniqueConstraint(fields=["jury", "juror"], name="jurymember_unique"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="jurymember_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.juror} in {self.jury} (w={self.weight})"


class JuryRun(models.Model):
    Status = JobStatus
    ACTIVE = ACTIVE

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jury_runs")
    jury = models.ForeignKey(Jury, on_delete=models.PROTECT, related_name="runs")
    task = models.CharField(max_length=16, choices=Task.choices)
    status = job_status_field()
    # The panel as it was when the run started (names, weights, prompt versions, rule, thresholds).
    config = models.JSONField(default=dict, blank=True)
    item_count = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    verdicts_expected = models.PositiveIntegerField(default=0)
    decisions_count = models.PositiveIntegerField(default=0)
    escalated_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text='[{"chunk": N, "juror": "...", "error": "..."}]')
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds spent per juror: load and scoring.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"jury run #{self.pk} {self.task} of {self.project_id} by {self.jury_id}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class JuryChunk(models.Model):
    """A slice of a run's items. A worker claims it with a lease it renews while it works; a chunk
    whose lease ran out (its worker died) can be claimed again, and its finished verdicts are kept
    (``annotation.jobs.lease_claim``). A chunk is never cancelled itself: its run is."""

    Status = JobStatus

    run = models.ForeignKey(JuryRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    item_ids = models.JSONField(default=list)
    status = job_status_field()
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="juror -> {load_s, score_s, verdicts}")
    stage = models.CharField(
        max_length=200, blank=True,
        help_text='What the worker is doing now, as the run page says it: "smol: preparing the model …", "smol: judging".',
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="jurychunk_unique_index")]

    def __str__(self) -> str:
        return f"chunk {self.index} of run {self.run_id}"


class Verdict(models.Model):
    """One juror's judgment of one target in one order. Written once.

    ``target`` names what was judged inside the run: ``i<item>:prompt``, ``i<item>:r<response>``,
    ``i<item>:p<a>-<b>`` (a pair, a < b by position) or ``i<item>:<principle code>:p<a>-<b>``.
    ``order`` 0 shows the pair as (a, b), order 1 as (b, a); probabilities are always stored in the
    shown order (``probs["A"]`` is the first shown) and ``p_first`` in the canonical order
    (P(a better)). Safety verdicts use order 0 only.
    """

    run = models.ForeignKey(JuryRun, on_delete=models.CASCADE, related_name="verdicts")
    juror = models.ForeignKey(Juror, on_delete=models.PROTECT, related_name="verdicts")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="jury_verdicts")
    task = models.CharField(max_length=16, choices=Task.choices)
    target = models.CharField(max_length=200)
    order = models.PositiveSmallIntegerField(default=0)
    response = models.ForeignKey(Response, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    response_b = models.ForeignKey(Response, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    principle = models.ForeignKey(Principle, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    label = models.CharField(max_length=32, help_text="The juror's most probable label (shown order for pairs).")
    probs = models.JSONField(default=dict, help_text="Label -> probability, normalised over the label set.")
    logprobs = models.JSONField(default=dict, help_text="Label -> summed log-probability of the whole label sequence.")
    p_positive = models.FloatField(
        null=True, blank=True, help_text="safety: P(unsafe); pairs: P(canonical first response better)."
    )
    category_probs = models.JSONField(default=dict, blank=True, help_text="safety: code -> P(unsafe and category).")
    position_consistent = models.BooleanField(
        null=True, blank=True, help_text="pairs: does the choice survive swapping the order? (null: not checked)"
    )
    truncated = models.BooleanField(default=False)
    truncation = models.JSONField(default=dict, blank=True, help_text="What the truncation policy dropped.")
    prompt_version = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "item", "target", "juror", "order"]
        constraints = [
            models.UniqueConstraint(fields=["run", "juror", "target", "order"], name="verdict_unique_unit"),
            models.CheckConstraint(condition=Q(order__in=[0, 1]), name="verdict_order_01"),
        ]
        indexes = [models.Index(fields=["run", "item"], name="verdict_run_item")]

    def __str__(self) -> str:
        return f"{self.juror_id} on {self.target}/{self.order}: {self.label}"


class JuryDecision(models.Model):
    """The panel's answer for one item and task, under the rule named in ``rule``.

    ``details`` holds the per-target results (votes, probabilities, categories, pairs, p_i per
    principle) that exports and metrics read. Safety/preference decisions link the jury annotation.
    """

    run = models.ForeignKey(JuryRun, on_delete=models.CASCADE, related_name="decisions")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="jury_decisions")
    task = models.CharField(max_length=16, choices=Task.choices)
    rule = models.CharField(max_length=16, choices=Jury.Rule.choices)
    label = models.CharField(max_length=32, blank=True, help_text="safety: the prompt's label; preference: the winner.")
    confidence = models.FloatField()
    escalated = models.BooleanField(default=False)
    reasons = models.JSONField(default=list, blank=True, help_text="Why it was escalated.")
    details = models.JSONField(default=dict, blank=True)
    annotation = models.OneToOneField(
        Annotation, on_delete=models.PROTECT, null=True, blank=True, related_name="jury_decision"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "item"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item", "task"], name="jurydecision_unique"),
            models.CheckConstraint(condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="jurydecision_conf_01"),
        ]

    def __str__(self) -> str:
        return f"decision {self.task} item {self.item_id}: {self.label} ({self.confidence:.2f})"
