"""Reads of the jury app: querysets with what the pages and the API need already joined."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Max, Min, QuerySet
from django.http import Http404
from django.utils import timezone

from annotation.jobs import JobStatus
from annotation.models import Annotation, Item, Project
from jury.models import Juror, Jury, JuryDecision, JuryRun, Verdict


def juror_list() -> QuerySet[Juror]:
    return Juror.objects.select_related("model_spec").order_by("name")


def jury_list() -> QuerySet[Jury]:
    return Jury.objects.prefetch_related("members__juror").order_by("name")


def run_list(*, project: Project) -> QuerySet[JuryRun]:
    return JuryRun.objects.filter(project=project).select_related("jury", "created_by").order_by("-created_at", "-id")


def run_get(*, project: Project, pk: int) -> JuryRun:
    run = JuryRun.objects.filter(project=project, pk=pk).select_related("jury", "created_by").first()
    if run is None:
        raise Http404("No such jury run.")
    return run


@dataclass
class JurorProgress:
    name: str
    done: int
    expected: int

    @property
    def percent(self) -> int:
        return int(round(100 * min(1.0, self.done / self.expected))) if self.expected else 100


@dataclass
class Progress:
    done: int
    expected: int
    chunks_done: int
    chunks: int
    jurors: list[JurorProgress] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)  # what the running chunks' workers are doing now
    rate_per_min: float | None = None  # verdicts per minute since the first verdict
    eta_minutes: float | None = None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.expected) if self.expected else 1.0

    @property
    def percent(self) -> int:
        return int(round(self.fraction * 100))

    @property
    def preparing(self) -> bool:
        return any("preparing" in stage or "loading" in stage for stage in self.stages)


ETA_MIN_VERDICTS = 10  # fewer verdicts than this give no estimate worth showing


def run_progress(*, run: JuryRun, now=None) -> Progress:
    """Progress counted from the stored verdicts themselves (exact even after a crash): overall and per
    juror (each juror judges every unit, so each expects an equal share), what the workers are doing
    now (``JuryChunk.stage``), and an estimate of the time left from the pace since the first verdict."""
    now = now or timezone.now()
    verdicts = Verdict.objects.filter(run=run)
    per_juror = dict(verdicts.values_list("juror_id").annotate(n=Count("id")).values_list("juror_id", "n"))
    members = (run.config or {}).get("jurors") or []
    share = run.verdicts_expected // len(members) if members else 0
    jurors = [JurorProgress(m["name"], per_juror.get(m["id"], 0), share) for m in members]
    done = sum(per_juror.values())
    span = verdicts.aggregate(first=Min("created_at"), last=Max("created_at"))
    rate = eta = None
    if done >= ETA_MIN_VERDICTS and span["first"] is not None and run.is_active:
        minutes = max((now - span["first"]).total_seconds() / 60, 1 / 60)
        rate = done / minutes
        eta = max(0, run.verdicts_expected - done) / rate
    stages = list(
        run.chunks.filter(status=JobStatus.RUNNING).exclude(stage="").order_by("index").values_list("stage", flat=True)
    )
    return Progress(
        done=done, expected=run.verdicts_expected,
        chunks_done=run.chunks.filter(status="done").count(), chunks=run.chunk_count,
        jurors=jurors, stages=stages, rate_per_min=rate, eta_minutes=eta,
    )


def run_decisions(*, run: JuryRun, escalated_only: bool = False) -> QuerySet[JuryDecision]:
    qs = JuryDecision.objects.filter(run=run).select_related("item").order_by("-escalated", "confidence", "item_id")
    return qs.filter(escalated=True) if escalated_only else qs


def item_get(*, project: Project, pk: int) -> Item:
    item = Item.objects.filter(project=project, pk=pk).prefetch_related("responses").first()
    if item is None:
        raise Http404("No such item.")
    return item


def item_verdicts(*, item: Item) -> QuerySet[Verdict]:
    return (
        Verdict.objects.filter(item=item)
        .select_related("juror", "run__jury", "response", "response_b", "principle")
        .order_by("-run__created_at", "run_id", "target", "juror__name", "order")
    )


def item_decisions(*, item: Item) -> QuerySet[JuryDecision]:
    return JuryDecision.objects.filter(item=item).select_related("run__jury").order_by("-run__created_at")


def item_current_labels(*, item: Item) -> QuerySet[Annotation]:
    """Every standing annotation of the item (people, imports, adjudications and the jury's decisions),
    oldest first; superseded and retracted records are left out, and so are the jurors' own records
    (the page reads those as verdicts, with their probabilities)."""
    return (
        Annotation.objects.filter(item=item).judgments().current()
        .select_related("annotator")
        .prefetch_related("response_safety")
        .order_by("created_at", "id")
    )


def jury_decision_confidences(*, annotation_ids: list[int]) -> dict[int, float]:
    """The panel's confidence behind each of these jury annotations: ``{annotation_id: confidence}``
    (annotations without a decision are absent). One query; exports filter on it."""
    return dict(
        JuryDecision.objects.filter(annotation_id__in=annotation_ids).values_list("annotation_id", "confidence")
    )
