"""Reads of the jury app: querysets with what the pages and the API need already joined."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

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
class Progress:
    done: int
    expected: int
    chunks_done: int
    chunks: int

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.expected) if self.expected else 1.0

    @property
    def percent(self) -> int:
        return int(round(self.fraction * 100))


def run_progress(*, run: JuryRun) -> Progress:
    """Progress counted from the stored verdicts themselves (exact even after a crash)."""
    return Progress(
        done=Verdict.objects.filter(run=run).count(),
        expected=run.verdicts_expected,
        chunks_done=run.chunks.filter(status="done").count(),
        chunks=run.chunk_count,
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


def item_human_labels(*, item: Item) -> QuerySet[Annotation]:
    """Annotations that are not the jury's: humans', imported ones and adjudications (neither the
    jury's decision nor its jurors' own records)."""
    return (
        Annotation.objects.filter(item=item).judgments().exclude(source=Annotation.Source.JURY)
        .select_related("annotator", "pair_a", "pair_b")
        .prefetch_related("response_safety")
        .order_by("created_at", "id")
    )


def jury_decision_confidences(*, annotation_ids: list[int]) -> dict[int, float]:
    """The panel's confidence behind each of these jury annotations: ``{annotation_id: confidence}``
    (annotations without a decision are absent). One query; exports filter on it."""
    return dict(
        JuryDecision.objects.filter(annotation_id__in=annotation_ids).values_list("annotation_id", "confidence")
    )
