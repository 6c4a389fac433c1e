"""The core data of Tribunal: taxonomies, principles, projects, items, responses and annotations.

Single-row invariants live here (and in database constraints where the database can hold them);
workflows that touch several rows live in ``annotation/services.py``.

Annotations are append-only. A correction is a new record whose ``supersedes`` points at the old
one; on PostgreSQL a trigger (migration 0002) rejects UPDATE and DELETE of annotation rows, so not
even a bulk queryset call or a raw SQL statement can rewrite a judgment.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotation.jobs import JobStatus, job_status_field


class ImmutableError(Exception):
    """Raised when code tries to change a record that the platform promises never to change."""


# --- Taxonomies ---------------------------------------------------------------------------------


class Taxonomy(models.Model):
    """A named safety taxonomy (Aegis 2.0, Llama Guard 3, ...). Its content lives in versions."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="Where the taxonomy comes from.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "taxonomies"

    def __str__(self) -> str:
        return self.name


class TaxonomyVersion(models.Model):
    """One version of a taxonomy. Once published it is immutable: edits make a new draft version.

    Every label (annotation, verdict) records the version it was made under.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    taxonomy = models.ForeignKey(Taxonomy, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    notes = models.TextField(blank=True, help_text="What changed in this version.")
    based_on = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="derived_versions"
    )
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["taxonomy__name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["taxonomy", "version"], name="taxver_unique_number"),
            models.UniqueConstraint(
                fields=["taxonomy"], condition=Q(status="draft"), name="taxver_one_draft_per_taxonomy"
            ),
            models.CheckConstraint(
                condition=Q(status="draft", published_at__isnull=True)
                | Q(status="published", published_at__isnull=False),
                name="taxver_published_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.taxonomy.name} v{self.version}"

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    def save(self, *args, **kwargs) -> None:
        if self.pk:
            stored = TaxonomyVersion.objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored == self.Status.PUBLISHED:
                raise ImmutableError(f"{self} is published and cannot be changed; create a new version.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.is_published:
            raise ImmutableError(f"{self} is published and cannot be deleted.")
        return super().delete(*args, **kwargs)


class HazardCategory(models.Model):
    class Group(models.TextChoices):
        CORE = "core", "Core"
        FINE = "fine", "Fine-grained"
        SPECIAL = "special", "Special (Needs Caution, Other)"

    version = models.ForeignKey(TaxonomyVersion, on_delete=models.CASCADE, related_name="categories")
    code = models.CharField(max_length=32, help_text="Short code used in labels and exports, e.g. S1.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    group = models.CharField(max_length=16, choices=Group.choices, default=Group.CORE)
    aliases = models.JSONField(default=list, blank=True, help_text="Other spellings that map here.")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["version", "order", "code"]
        verbose_name_plural = "hazard categories"
        constraints = [
            models.UniqueConstraint(fields=["version", "code"], name="hazard_unique_code"),
            models.UniqueConstraint(fields=["version", "name"], name="hazard_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def _check_version_editable(self) -> None:
        status = TaxonomyVersion.objects.filter(pk=self.version_id).values_list("status", flat=True).first()
        if status == TaxonomyVersion.Status.PUBLISHED:
            raise ImmutableError(
                "Categories of a published taxonomy version cannot change; create a new version."
            )

    def save(self, *args, **kwargs) -> None:
        self._check_version_editable()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._check_version_editable()
        return super().delete(*args, **kwargs)


# --- Principles ---------------------------------------------------------------------------------


class PrincipleSet(models.Model):
    """Principles that annotators and jurors cite (the discretion metrics of Buyl et al.)."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Principle(models.Model):
    class Group(models.TextChoices):
        HELPFUL = "helpfulness", "Helpfulness"
        HONEST = "honesty", "Honesty"
        HARMLESS = "harmlessness", "Harmlessness"

    principle_set = models.ForeignKey(PrincipleSet, on_delete=models.CASCADE, related_name="principles")
    code = models.SlugField(max_length=64)
    short = models.CharField(max_length=80, help_text="A short label shown on buttons.")
    text = models.TextField(help_text='The full principle, e.g. "The AI should ...".')
    group = models.CharField(max_length=16, choices=Group.choices)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["principle_set", "order", "code"]
        constraints = [models.UniqueConstraint(fields=["principle_set", "code"], name="principle_unique_code")]

    def __str__(self) -> str:
        return self.short


# --- Projects -----------------------------------------------------------------------------------


class Project(models.Model):
    class Mode(models.TextChoices):
        RANKING = "ranking", "Ranking"
        PAIRWISE = "pairwise", "Pairwise"
        SAFETY = "safety", "Safety"
        RANKING_SAFETY = "ranking_safety", "Ranking + safety"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown; sanitised when shown.")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.RANKING_SAFETY)
    overlap = models.PositiveSmallIntegerField(default=1, help_text="How many annotators judge each item.")
    taxonomy_version = models.ForeignKey(TaxonomyVersion, on_delete=models.PROTECT, related_name="projects")
    principle_set = models.ForeignKey(
        PrincipleSet, on_delete=models.PROTECT, null=True, blank=True, related_name="projects"
    )
    require_category_when_unsafe = models.BooleanField(default=True)
    show_jury_suggestion = models.BooleanField(default=False)
    preselect_safe = models.BooleanField(
        default=False,
        help_text="Start every response's safety label at 'safe' in the workbench. Off by default: a "
        "pre-selected answer biases the data towards it.",
    )
    lease_seconds = models.PositiveIntegerField(default=900, help_text="How long a served item is held.")
    gold_rate = models.FloatField(default=0.0, help_text="Share of served items that are gold items.")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    # Not columns: what the reads that show a project to one caller set on the instance
    # (annotation.selectors.project_list_for_user, the projects API). Declared for type checking only.
    item_count: int
    user_role: str | None
    role: str | None
    counts: dict[str, int]

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1) & Q(overlap__lte=50), name="project_overlap_range"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role inside one project. Access to a project's data requires a membership
    (or the site-wide admin role)."""

    class Role(models.TextChoices):
        RESEARCHER = "researcher", "Researcher"
        ANNOTATOR = "annotator", "Annotator"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "user"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


# --- Import batches -----------------------------------------------------------------------------


class WorkerClaimed(models.Model):
    """Who runs a background job and when they last reported (see ``annotation.jobs``)."""

    claimed_by = models.CharField(max_length=255, blank=True, help_text="host:pid of the worker running it.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Refreshed by progress reports.")

    class Meta:
        abstract = True


class ImportBatch(WorkerClaimed):
    """One import of one file into one project: what was read, what was stored, what was wrong.
    A FAILED import stored nothing (an import is all or nothing)."""

    Status = JobStatus

    class Format(models.TextChoices):
        AUTO = "auto", "Detect"
        TRIBUNAL = "tribunal", "Tribunal JSONL"
        CSV = "csv", "Tribunal CSV"
        HH_RLHF = "hh-rlhf", "HH-RLHF"
        OASST = "oasst", "OpenAssistant trees"
        AEGIS = "aegis", "Aegis 2.0 rows"
        CSV_RATERS = "csv-raters", "CSV, one label column per rater"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source_name = models.CharField(max_length=500, help_text="The file name as given by the user.")
    stored_path = models.CharField(max_length=1000, blank=True, help_text="Where a background import reads from.")
    requested_format = models.CharField(max_length=16, choices=Format.choices, default=Format.AUTO)
    detected_format = models.CharField(max_length=16, choices=Format.choices, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    background = models.BooleanField(default=False)
    status = job_status_field()
    bytes_read = models.BigIntegerField(default=0)
    records_read = models.PositiveIntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)
    items_skipped = models.PositiveIntegerField(
        default=0, help_text="Not stored: the sum of skipped_detail (duplicates, already present, ignored)."
    )
    skipped_detail = models.JSONField(
        default=dict, blank=True,
        help_text='Why records were not stored: {"duplicates_in_file", "already_in_project", "ignored"} '
        "(ignored: rows the format leaves out on purpose, e.g. Aegis REDACTED prompts).",
    )
    responses_created = models.PositiveIntegerField(default=0)
    annotations_created = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text='[{"line": N, "error": "..."}]')
    options = models.JSONField(
        default=dict, blank=True, help_text='Format options: {"mapping": {...}} for csv-raters (see the README).'
    )
    error_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"import #{self.pk} {self.source_name} → {self.project_id}"

    @property
    def progress(self) -> float:
        if self.status == self.Status.DONE:
            return 1.0
        return min(1.0, self.bytes_read / self.size_bytes) if self.size_bytes else 0.0


# --- Items and responses ------------------------------------------------------------------------


class Item(models.Model):
    """A prompt (a list of chat messages) with the responses to judge.

    ``kind`` ``judge`` is an ordinary item (its imported/generated responses are judged);
    ``edit_review`` is the review of one synthetic edit (``review_of``, a Response with origin
    ``edited``): it copies the original item's prompt, its ``metadata["edit"]`` says what drove the
    edit, and its content hash is ``sha256("edit-review:" + edited response id)``, never a judge hash.
    """

    class Kind(models.TextChoices):
        JUDGE = "judge", "Judge responses"
        EDIT_REVIEW = "edit_review", "Review an edit"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=255, blank=True)
    prompt = models.JSONField(help_text='[{"role": "user", "content": "..."}, ...]')
    metadata = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64, help_text="sha256 of prompt + responses; dedups imports.")
    import_batch = models.ForeignKey(
        ImportBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="items"
    )
    source_file = models.CharField(max_length=500, blank=True)
    source_line = models.PositiveIntegerField(null=True, blank=True)
    priority = models.IntegerField(default=0, help_text="Higher comes first in annotation queues.")
    is_gold = models.BooleanField(default=False)
    gold_answer = models.JSONField(null=True, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.JUDGE)
    review_of = models.ForeignKey(
        "Response", on_delete=models.PROTECT, null=True, blank=True, related_name="review_items",
        help_text="edit_review items: the edited response under review.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Kept by database triggers (migration 0005), never by application code: writes from here are ignored.
    filled = models.PositiveSmallIntegerField(
        default=0, editable=False,
        help_text="Live (active or done) slotted assignments; the queue skips items where this reaches the overlap.",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="item_unique_content"),
            models.UniqueConstraint(
                fields=["project", "external_id"], condition=~Q(external_id=""), name="item_unique_external_id"
            ),
            models.CheckConstraint(
                condition=(Q(kind="judge") & Q(review_of__isnull=True))
                | (Q(kind="edit_review") & Q(review_of__isnull=False)),
                name="item_review_kind_has_target",
            ),
        ]
        indexes = [models.Index(fields=["project", "-priority", "id"], name="item_queue_order")]

    def __str__(self) -> str:
        return f"item {self.pk} ({self.external_id or 'no external id'})"


class ResponseQuerySet(models.QuerySet["Response"]):
    def judged(self) -> ResponseQuerySet:
        """The responses that ordinary (judge) items show and judge: imported and generated ones.
        Edits (model and human) are reviewed through their own ``edit_review`` items instead."""
        return self.filter(origin__in=Response.JUDGED_ORIGINS)


class Response(models.Model):
    class Origin(models.TextChoices):
        IMPORTED = "imported", "Imported"
        GENERATED = "generated", "Generated"
        EDITED = "edited", "Edited"
        HUMAN_EDITED = "human_edited", "Edited by a human"

    # What ordinary (judge) items show and judge: edits live in edit_review items only.
    JUDGED_ORIGINS = (Origin.IMPORTED, Origin.GENERATED)
    EDIT_ORIGINS = (Origin.EDITED, Origin.HUMAN_EDITED)

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="responses")
    position = models.PositiveSmallIntegerField(help_text="Order in the source (0-based).")
    text = models.TextField()
    model_name = models.CharField(max_length=200, blank=True)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.IMPORTED)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="edits")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ResponseQuerySet.as_manager()

    class Meta:
        ordering = ["item", "position"]
        constraints = [
            models.UniqueConstraint(fields=["item", "position"], name="response_unique_position"),
            models.CheckConstraint(
                condition=~Q(origin__in=["edited", "human_edited"]) | Q(parent__isnull=False),
                name="response_edit_has_parent",
            ),
        ]

    def __str__(self) -> str:
        return f"response {self.pk} of item {self.item_id}"


# --- Annotations --------------------------------------------------------------------------------


class SafetyLabel(models.TextChoices):
    SAFE = "safe", "Safe"
    NEEDS_CAUTION = "needs_caution", "Needs caution"
    UNSAFE = "unsafe", "Unsafe"


# Sources of the per-juror and per-guard records of a jury run: raters of the metrics only. No
# reader of judgments (queue, consensus, exports, adjudication, workbench, counts) sees them.
MACHINE_RATER_SOURCES = ("juror", "guard")


class AnnotationQuerySet(models.QuerySet["Annotation"]):
    def judgments(self) -> AnnotationQuerySet:
        """Every record but the machine raters' (:data:`MACHINE_RATER_SOURCES`): people's, imported,
        the jury's decisions and adjudications, what the platform's judgment readers read."""
        return self.exclude(source__in=MACHINE_RATER_SOURCES)

    @staticmethod
    def judgments_sql(alias: str) -> str:
        """:meth:`judgments` as a SQL condition on the annotation table aliased ``alias``."""
        return f"{alias}.source NOT IN ({', '.join(repr(s) for s in MACHINE_RATER_SOURCES)})"

    def current(self) -> AnnotationQuerySet:
        """The annotations that stand: the newest record of each correction chain (nothing
        supersedes it), unless that record is a retraction (an undo withdraws its chain)."""
        return self.filter(retracted=False, superseded_by__isnull=True)

    @staticmethod
    def current_sql(alias: str) -> str:
        """:meth:`current` as a SQL condition on the annotation table aliased ``alias``, for the
        hand-written queries that read millions of rows (exports)."""
        table = Annotation._meta.db_table
        return (
            f"NOT {alias}.retracted AND "
            f"NOT EXISTS (SELECT 1 FROM {table} superseding WHERE superseding.supersedes_id = {alias}.id)"
        )


class PriorityRaise(models.Model):
    """Why an item's queue priority was raised: by whom (``source``: jury, guard, ...; with the run in
    ``source_detail``), to what, and the reason in words. Shown on the adjudication page; written
    only by ``annotation.services.item_priority_raise``, once per (item, source, source_detail)."""

    project = models.ForeignKey("Project", on_delete=models.CASCADE, related_name="priority_raises")
    item = models.ForeignKey("Item", on_delete=models.CASCADE, related_name="priority_raises")
    priority = models.IntegerField()
    reason = models.CharField(max_length=500)
    source = models.CharField(max_length=32)
    source_detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["item_id", "-priority", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["item", "source", "source_detail"], name="priority_raise_once_per_source")
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} → {self.priority} ({self.source}): {self.reason[:60]}"


class Annotation(models.Model):
    """One judgment of one item by one rater. Append-only.

    - ``ranking``: ordered tie groups of response ids, best first: ``[[12], [14, 15], [13]]``.
    - pairwise: ``pair_a`` vs ``pair_b`` with ``pair_choice`` (a / b / tie) and ``pair_strength``
      (3 much better, 2 better, 1 slightly better, 0 tie).
    - safety: ``prompt_label`` + ``prompt_categories`` here; per-response labels in ``ResponseSafety``.
    """

    class Source(models.TextChoices):
        HUMAN = "human", "Human"
        IMPORT = "import", "Imported"
        JURY = "jury", "Jury"
        ADJUDICATION = "adjudication", "Adjudication"
        # One juror's own answer inside a jury run (the panel of one), and a guard model's when
        # it sits on a panel. Metrics rows of their own; never people's judgments (see MACHINE_RATERS).
        JUROR = "juror", "Juror"
        GUARD = "guard", "Guard"

    class PairChoice(models.TextChoices):
        A = "a", "A"
        B = "b", "B"
        TIE = "tie", "Tie"

    class EditVerdict(models.TextChoices):
        NONE = "", "—"
        ACCEPT = "accept", "Accept"
        REJECT = "reject", "Reject"
        FIX = "fix", "Fix"

    class Strength(models.IntegerChoices):
        TIE = 0, "Tie"
        SLIGHTLY = 1, "Slightly better"
        BETTER = 2, "Better"
        MUCH = 3, "Much better"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="annotations")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="annotations")
    source = models.CharField(max_length=16, choices=Source.choices)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="annotations"
    )
    source_detail = models.CharField(
        max_length=200, blank=True, help_text="e.g. the import format, or the jury's name."
    )
    import_batch = models.ForeignKey(
        ImportBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="annotations"
    )
    ranking = models.JSONField(null=True, blank=True)
    pair_a = models.ForeignKey(Response, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    pair_b = models.ForeignKey(Response, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    pair_choice = models.CharField(max_length=4, choices=PairChoice.choices, blank=True)
    pair_strength = models.PositiveSmallIntegerField(choices=Strength.choices, null=True, blank=True)
    prompt_label = models.CharField(max_length=16, choices=SafetyLabel.choices, blank=True)
    prompt_categories = models.JSONField(default=list, blank=True)
    taxonomy_version = models.ForeignKey(
        TaxonomyVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="annotations"
    )
    rationale = models.TextField(blank=True)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    principles = models.ManyToManyField(Principle, blank=True, related_name="annotations")
    principles_conflicted = models.BooleanField(default=False)
    shown_order = models.JSONField(null=True, blank=True, help_text="Response ids in the order shown.")
    duration_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Served → submitted, server-side.")
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )
    idempotency_key = models.CharField(max_length=64, blank=True)
    rater = models.CharField(
        max_length=100, blank=True, default="",
        help_text="Imported: the rater's id in the source file (not a Tribunal user); juror / guard: "
        "run<id>:<juror name>. One record per item and rater; metrics count each id as a rater of its own.",
    )
    retracted = models.BooleanField(
        default=False,
        help_text="An undo: this record withdraws the one it supersedes and carries no labels itself.",
    )
    edit_verdict = models.CharField(
        max_length=8, choices=EditVerdict.choices, blank=True, default="",
        help_text="edit_review items: accept / reject / fix of the edit under review.",
    )
    edit_fix = models.ForeignKey(
        Response, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="verdict fix: the human's fix (a Response origin=human_edited whose parent is the reviewed edit).",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AnnotationQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(retracted=False) | Q(supersedes__isnull=False), name="annotation_retraction_supersedes"
            ),
            models.CheckConstraint(
                condition=~Q(source="human") | Q(annotator__isnull=False), name="annotation_human_has_annotator"
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | (Q(confidence__gte=1) & Q(confidence__lte=5)),
                name="annotation_confidence_1_5",
            ),
            models.CheckConstraint(
                # NULL compares as unknown in SQL, so "strength is not null" is spelled out: a CHECK
                # passes on unknown, and `strength IN (1, 2, 3)` alone would let a NULL through.
                condition=(
                    Q(pair_choice="") & Q(pair_a__isnull=True) & Q(pair_b__isnull=True) & Q(pair_strength__isnull=True)
                )
                | (
                    Q(pair_choice="tie") & Q(pair_strength__isnull=False) & Q(pair_strength=0)
                    & Q(pair_a__isnull=False) & Q(pair_b__isnull=False)
                )
                | (
                    Q(pair_choice__in=["a", "b"]) & Q(pair_strength__isnull=False) & Q(pair_strength__in=[1, 2, 3])
                    & Q(pair_a__isnull=False) & Q(pair_b__isnull=False)
                )
                # An imported preference whose source states no strength (HH-RLHF) keeps none.
                | (
                    Q(pair_choice__in=["a", "b"]) & Q(pair_strength__isnull=True) & Q(source="import")
                    & Q(pair_a__isnull=False) & Q(pair_b__isnull=False)
                ),
                name="annotation_pairwise_complete",
            ),
            models.CheckConstraint(
                condition=Q(pair_a__isnull=True) | ~Q(pair_a=models.F("pair_b")), name="annotation_pair_distinct"
            ),
            models.CheckConstraint(
                condition=Q(prompt_label="") | Q(prompt_label__in=["safe", "needs_caution", "unsafe"]),
                name="annotation_prompt_label_valid",
            ),
            models.CheckConstraint(
                condition=Q(prompt_label="") | Q(taxonomy_version__isnull=False),
                name="annotation_safety_has_taxonomy",
            ),
            models.UniqueConstraint(
                fields=["annotator", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="annotation_idempotent",
            ),
            models.CheckConstraint(
                condition=Q(rater="") | Q(source__in=["import", "juror", "guard"]), name="annotation_rater_only_imported"
            ),
            models.CheckConstraint(
                condition=~Q(source__in=["juror", "guard"]) | ~Q(rater=""), name="annotation_machine_rater_named"
            ),
            models.UniqueConstraint(
                fields=["item", "rater"], condition=~Q(rater=""), name="annotation_imported_rater_once"
            ),
            models.CheckConstraint(
                condition=Q(edit_verdict__in=["", "accept", "reject", "fix"]), name="annotation_edit_verdict_valid"
            ),
            models.CheckConstraint(
                condition=Q(edit_fix__isnull=True) | Q(edit_verdict="fix"), name="annotation_edit_fix_only_with_fix"
            ),
        ]
        indexes = [
            models.Index(fields=["item", "source"], name="annotation_item_source"),
            models.Index(fields=["project", "annotator"], name="annotation_project_annotator"),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} ({self.source}) of item {self.item_id}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableError("Annotations are append-only; record a correction with `supersedes`.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("Annotations are append-only and cannot be deleted.")


class ResponseSafety(models.Model):
    """The safety label an annotation gives one response. Append-only with its annotation."""

    annotation = models.ForeignKey(Annotation, on_delete=models.PROTECT, related_name="response_safety")
    response = models.ForeignKey(Response, on_delete=models.PROTECT, related_name="safety_labels")
    label = models.CharField(max_length=16, choices=SafetyLabel.choices)
    categories = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["annotation", "response"]
        verbose_name_plural = "response safety labels"
        constraints = [
            models.UniqueConstraint(fields=["annotation", "response"], name="respsafety_unique"),
            models.CheckConstraint(
                condition=Q(label__in=["safe", "needs_caution", "unsafe"]), name="respsafety_label_valid"
            ),
        ]

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableError("Safety labels are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("Safety labels are append-only and cannot be deleted.")


class PrinciplePreference(models.Model):
    """A principle-specific preference p_i (Buyl et al., ``../shared/REFERENCE.md`` §2): for one pair
    of an item's responses and one principle, how likely a judge thinks the principle prefers
    ``pair_a`` (``prob_a``), ``pair_b`` (``prob_b``) or neither (``prob_na``), and the sign
    ``preference``: +1 (a), -1 (b) or null (no preference: NA most likely, or a tie).

    Written by ``annotation.services.principle_preferences_record`` (the jury's principles task
    records the panel's p_i with ``source="jury"`` and each juror's with ``source="juror"`` /
    ``"guard"``). ``rater`` is the stored id (``run<id>`` for a panel, ``run<id>:<juror>`` for one
    juror), unique per item, pair and principle; ``source_detail`` the readable name (the jury's,
    the juror's). Append-only, like annotations.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="principle_preferences")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="principle_preferences")
    pair_a = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    pair_b = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    principle = models.ForeignKey(Principle, on_delete=models.PROTECT, related_name="preferences")
    source = models.CharField(max_length=16, help_text="jury (the panel), juror or guard.")
    source_detail = models.CharField(max_length=200, blank=True, help_text="The jury's or the juror's name.")
    rater = models.CharField(max_length=100, help_text="run<id> (the panel) or run<id>:<juror>.")
    prob_a = models.FloatField()
    prob_b = models.FloatField()
    prob_na = models.FloatField(default=0.0)
    preference = models.SmallIntegerField(null=True, blank=True, help_text="+1: a, -1: b, null: none.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "pair_a", "pair_b", "principle", "rater"], name="principlepref_once_per_rater"
            ),
            models.CheckConstraint(condition=~Q(pair_a=models.F("pair_b")), name="principlepref_pair_distinct"),
            models.CheckConstraint(
                condition=Q(preference__isnull=True) | Q(preference__in=[-1, 1]), name="principlepref_sign"
            ),
            models.CheckConstraint(
                condition=Q(prob_a__gte=0) & Q(prob_a__lte=1) & Q(prob_b__gte=0) & Q(prob_b__lte=1)
                & Q(prob_na__gte=0) & Q(prob_na__lte=1),
                name="principlepref_probs_01",
            ),
        ]
        indexes = [models.Index(fields=["project", "source"], name="principlepref_project_source")]

    def __str__(self) -> str:
        return f"p({self.principle_id}) on {self.pair_a_id}-{self.pair_b_id} by {self.rater}: {self.preference}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableError("Principle preferences are append-only.")
        super().save(*args, **kwargs)


# --- Annotation queue (the workbench) -----------------------------------------------------------


class Assignment(models.Model):
    """One item handed to one annotator: the lease, the shown response order, and how it ended.

    The database holds the queue's promises, whatever the application code does:
    - nobody gets the same item twice: one row per (item, annotator), ever; a lease that lapsed is
      revived for the same person, never duplicated;
    - at most ``overlap`` live (active or done) assignments per item: every live non-gold row holds a
      numbered slot ``0 <= slot < overlap`` (the service hands out the lowest free one under a lock
      on the item) and a live slot is unique per item;
    - one active lease per annotator and project, so two tabs cannot hoard two items.

    Skips and flags are recorded here too (status + reason + note): they end the lease and give the
    slot back to the pool.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active (leased)"
        DONE = "done", "Submitted"
        EXPIRED = "expired", "Lease expired"
        RELEASED = "released", "Released"
        SKIPPED = "skipped", "Skipped"
        FLAGGED = "flagged", "Flagged"

    class SkipReason(models.TextChoices):
        UNSURE = "unsure", "Not sure / outside my expertise"
        LANGUAGE = "language", "Language I cannot judge"
        TOO_LONG = "too_long", "Too long to judge well"
        OTHER = "other", "Other"

    class Flag(models.TextChoices):
        BROKEN = "broken", "Broken (empty, garbled, missing responses)"
        HARMFUL = "harmful_to_view", "Harmful to view"

    LIVE = (Status.ACTIVE, Status.DONE)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    slot = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Overlap slot; null for gold items.")
    is_gold = models.BooleanField(default=False)
    shown_order = models.JSONField(default=list, help_text="Response ids in the order shown to this annotator.")
    served_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    annotation = models.ForeignKey(
        Annotation, on_delete=models.PROTECT, null=True, blank=True, related_name="assignments"
    )
    reason = models.CharField(max_length=32, blank=True, help_text="Skip reason or flag kind.")
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="assignment_once_per_annotator"),
            models.UniqueConstraint(
                fields=["item", "slot"],
                condition=Q(status__in=["active", "done"]) & Q(slot__isnull=False),
                name="assignment_live_slot_unique",
            ),
            models.UniqueConstraint(
                fields=["project", "annotator"], condition=Q(status="active"), name="assignment_one_active_lease"
            ),
            models.CheckConstraint(
                condition=Q(is_gold=True) | Q(slot__isnull=False), name="assignment_regular_has_slot"
            ),
            models.CheckConstraint(
                condition=~Q(status="done") | (Q(annotation__isnull=False) & Q(submitted_at__isnull=False)),
                name="assignment_done_has_annotation",
            ),
        ]
        indexes = [
            models.Index(fields=["item", "status"], name="assignment_item_status"),
            models.Index(fields=["project", "annotator", "status"], name="assignment_annotator_status"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk}: item {self.item_id} → user {self.annotator_id} ({self.status})"


# --- Taxonomy crosswalk -------------------------------------------------------------------------


class CategoryMapping(models.Model):
    """One directed link of the taxonomy crosswalk: a category of one taxonomy version and a
    category of another that label (some of) the same content.

    ``relation`` compares the SOURCE's scope with the TARGET's: ``exact`` (the same harm),
    ``broader`` (the source covers more than the target), ``narrower`` (every source case is a
    target case), ``related`` (they overlap). ``judgment_call`` marks links that are not one-to-one
    or obvious from the two definitions. Rows are plain data an admin may edit: the preset seed
    (``annotation.crosswalk.crosswalk_seed_presets``) fills a pair of versions only while it has no
    rows, so it never overwrites an edit (nor brings back a deleted row).
    """

    class Relation(models.TextChoices):
        EXACT = "exact", "exact"
        BROADER = "broader", "broader"
        NARROWER = "narrower", "narrower"
        RELATED = "related", "related"

    source = models.ForeignKey(HazardCategory, on_delete=models.CASCADE, related_name="mappings_out")
    target = models.ForeignKey(HazardCategory, on_delete=models.CASCADE, related_name="mappings_in")
    relation = models.CharField(
        max_length=16, choices=Relation.choices, default=Relation.RELATED,
        help_text="The source's scope against the target's: exact (the same harm), broader (the source covers "
                  "more), narrower (every source case is a target case), related (they overlap).",
    )
    judgment_call = models.BooleanField(
        default=False, help_text="Not one-to-one or obvious from the definitions: a person chose it."
    )
    note = models.TextField(blank=True, help_text="Why the two categories are linked (or how they differ).")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source__version", "source__order", "target__version", "target__order"]
        constraints = [
            models.UniqueConstraint(fields=["source", "target"], name="catmap_unique_pair"),
            models.CheckConstraint(condition=~Q(source=models.F("target")), name="catmap_not_self"),
        ]

    def __str__(self) -> str:
        return (f"{self.source.version.taxonomy.slug} {self.source.code} → "
                f"{self.target.version.taxonomy.slug} {self.target.code} ({self.relation})")

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.source_id and self.target_id and self.source.version_id == self.target.version_id:
            raise ValidationError("A crosswalk links categories of two different taxonomy versions.")


# --- Metrics computed on the worker ---------------------------------------------------------------


class MetricsSnapshot(WorkerClaimed):
    """A project's metrics report computed on the worker (projects above ``METRICS_WORKER_THRESHOLD``
    annotations; see :mod:`annotation.metrics.services`). ``version`` is what the figures depend on
    (the newest annotation id, skip, flag and gold counts): one snapshot per version, ``n_boot`` and
    ``seed``; the page shows the newest DONE one and says when it is older than the project."""

    Status = JobStatus

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="metrics_snapshots")
    version = models.CharField(max_length=100, help_text="newest annotation id-skipped-flagged-gold items.")
    newest_annotation_id = models.BigIntegerField(default=0)
    n_boot = models.PositiveIntegerField()
    seed = models.IntegerField(default=0)
    status = job_status_field()
    result = models.JSONField(null=True, blank=True, help_text="The report (annotation.metrics.report).")
    error = models.TextField(blank=True)
    seconds = models.FloatField(null=True, blank=True, help_text="Wall time of the computation.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version", "n_boot", "seed"], name="metrics_snapshot_once"),
        ]
        indexes = [models.Index(fields=["project", "n_boot", "seed", "status"], name="metrics_snapshot_latest")]

    def __str__(self) -> str:
        return f"metrics #{self.pk} of {self.project_id} at {self.version} ({self.status})"
