"""Run lifecycle: start (chunks), dispatch, cancel, resume.

    jury_run_start    -> JuryRun(pending) + JuryChunk rows; enqueues jury.run_dispatch on commit
    jury_run_dispatch -> pending -> running; returns every chunk not done (the task enqueues them)
    jury_run_cancel   -> pending/running -> cancelled; workers stop at their next batch
    jury_run_resume   -> failed chunks back to pending, the run dispatched again
"""
from __future__ import annotations

import math

from django.db import transaction
from django.db.models import Count, Prefetch, Q
from django.utils import timezone

from annotation import jobs
from annotation.models import Item, Project, Response
from jury import judging
from jury.models import Jury, JuryChunk, JuryRun, Task


def judged_origins(config: dict) -> tuple[str, ...]:
    """The response origins a run judges: imported and generated; edits only when the run's
    config has ``include_edits`` (runs started before issue 11 have no key: no edits)."""
    if config.get("include_edits"):
        return (*Response.JUDGED_ORIGINS, *Response.EDIT_ORIGINS)
    return tuple(Response.JUDGED_ORIGINS)


def run_items_with_responses(run: JuryRun, item_ids: list[int]):
    """The run's items with ``responses`` prefetched: only the origins the run judges."""
    return Item.objects.filter(pk__in=item_ids).prefetch_related(
        Prefetch("responses", queryset=Response.objects.filter(origin__in=judged_origins(run.config)))
    )


def _targets_per_item(task: str, n_responses: int, n_principles: int) -> int:
    """Verdicts one juror writes for one item (orders included)."""
    pairs = n_responses * (n_responses - 1) // 2
    if task == Task.SAFETY:
        return 1 + n_responses
    if task == Task.PREFERENCE:
        return 2 * pairs
    return 2 * pairs * n_principles


@transaction.atomic
def jury_run_start(
    *, project: Project, jury: Jury, task: str, user=None, chunk_size: int | None = None,
    item_ids: list[int] | None = None, include_edits: bool = False,
) -> JuryRun:
    """Create a run over the project's items (or ``item_ids``), split into chunks, and enqueue it
    after commit. Raises ValueError for a task the project cannot do or a jury without jurors.

    The run judges the items' imported and generated responses; synthetic edits (origin edited /
    human_edited, issue 11) only with ``include_edits`` (recorded in ``config``). Edit-review items
    are never judged: they are a human task."""
    from jury.tasks import run_dispatch_task

    if task not in Task.values:
        raise ValueError(f"Unknown jury task {task!r}; choose one of {Task.values}.")
    members = list(jury.members.select_related("juror__model_spec").filter(juror__enabled=True).order_by("juror__name"))
    if not members:
        raise ValueError(f"Jury {jury.name!r} has no enabled jurors.")
    principles: list[tuple[int, str, str]] = []
    if task == Task.PRINCIPLES:
        principle_set = project.principle_set  # None without a query when principle_set_id is None
        if principle_set is None:
            raise ValueError("This project has no principle set; the principles task needs one.")
        principles = list(principle_set.principles.order_by("order", "code").values_list("id", "code", "text"))
        if not principles:
            raise ValueError("The project's principle set has no principles.")
    categories = judging.judged_categories(
        list(project.taxonomy_version.categories.order_by("order", "code").values_list("code", "name"))
    )
    items = Item.objects.filter(project=project, kind=Item.Kind.JUDGE)
    if item_ids is not None:
        items = items.filter(pk__in=item_ids)
    judged = Q(responses__origin__in=judged_origins({"include_edits": include_edits}))
    rows = list(items.annotate(n=Count("responses", filter=judged)).order_by("id").values_list("id", "n"))
    size = int(chunk_size or jury.chunk_size)
    if size < 1:
        raise ValueError("chunk_size must be at least 1.")
    per_juror = sum(_targets_per_item(task, n, len(principles)) for _, n in rows)
    run = JuryRun.objects.create(
        project=project, jury=jury, task=task, created_by=user,
        item_count=len(rows), chunk_count=math.ceil(len(rows) / size),
        verdicts_expected=per_juror * len(members),
        config={
            "jury": jury.name, "rule": jury.rule, "threshold": jury.threshold,
            "caution_low": jury.caution_low, "caution_high": jury.caution_high,
            "category_threshold": jury.category_threshold, "min_confidence": jury.min_confidence,
            "escalate_on_split": jury.escalate_on_split, "escalation_priority": jury.escalation_priority,
            "jurors": [
                {"id": m.juror_id, "name": m.juror.name, "weight": m.weight, "prompt_version": m.juror.prompt_version,
                 "spec": m.juror.spec()}
                for m in members
            ],
            "categories": categories, "principles": principles,
            "taxonomy_version": project.taxonomy_version_id,
            "include_edits": bool(include_edits),
        },
    )
    JuryChunk.objects.bulk_create(
        [JuryChunk(run=run, index=n, item_ids=[i for i, _ in rows[start:start + size]])
         for n, start in enumerate(range(0, len(rows), size))]
    )
    run_dispatch_task.delay_on_commit(run.pk)
    return run


@transaction.atomic
def jury_run_dispatch(*, run_id: int) -> list[int]:
    """Mark the run running and return the chunks to enqueue (all not done). Idempotent: a second
    dispatch re-enqueues unfinished chunks, which is harmless (chunks are claimed with a lease)."""
    run = JuryRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None or run.status not in JuryRun.ACTIVE:
        return []
    if run.status == JuryRun.Status.PENDING:
        run.status = JuryRun.Status.RUNNING
        run.started_at = run.started_at or timezone.now()
        run.save(update_fields=["status", "started_at"])
    chunk_ids = list(run.chunks.exclude(status__in=[JuryChunk.Status.DONE, JuryChunk.Status.FAILED]).values_list("id", flat=True))
    if not chunk_ids and not run.chunks.filter(status=JuryChunk.Status.FAILED).exists():
        transaction.on_commit(lambda: _finalize_after_commit(run_id))
    return chunk_ids


def _finalize_after_commit(run_id: int) -> None:
    from jury.tasks import run_finalize_task

    run_finalize_task.delay(run_id)


@transaction.atomic
def jury_run_cancel(*, run: JuryRun) -> JuryRun:
    """Stop a pending or running run. Workers stop at their next batch; verdicts stay."""
    if not jobs.cancel(model=JuryRun, pk=run.pk):
        raise ValueError(f"Run #{run.pk} is {run.status}; only pending or running runs can be cancelled.")
    run.refresh_from_db()
    return run


@transaction.atomic
def jury_run_resume(*, run: JuryRun) -> JuryRun:
    """Continue a cancelled or failed run (or re-enqueue a running one): failed chunks go back to
    pending and the run is dispatched again. Work already done is skipped."""
    from jury.tasks import run_dispatch_task

    locked = JuryRun.objects.select_for_update().get(pk=run.pk)
    if locked.status == JuryRun.Status.DONE:
        raise ValueError(f"Run #{run.pk} is already done.")
    locked.chunks.filter(status=JuryChunk.Status.FAILED).update(status=JuryChunk.Status.PENDING, attempts=0, error="")
    if locked.status != JuryRun.Status.RUNNING:
        locked.status = JuryRun.Status.PENDING
        locked.finished_at = None
        locked.save(update_fields=["status", "finished_at"])
    run_dispatch_task.delay_on_commit(locked.pk)
    return locked


def jury_runs_resume_all() -> list[int]:
    """Re-dispatch every pending or running run (called when a worker starts, so a run whose
    worker was killed continues). Returns the run ids."""
    from jury.tasks import run_dispatch_task

    ids = list(JuryRun.objects.filter(status__in=JuryRun.ACTIVE).values_list("id", flat=True))
    for run_id in ids:
        run_dispatch_task.delay(run_id)
    return ids


