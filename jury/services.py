"""Writes of the jury app: jurors, juries, runs, chunks, verdicts and decisions.

Run lifecycle (see ``jury/tasks.py`` for the Celery side):

    jury_run_start   -> JuryRun(pending) + JuryChunk rows; enqueues jury.run_dispatch on commit
    jury_run_dispatch-> pending -> running; enqueues jury.run_chunk for every chunk not done
    jury_chunk_process -> claims the chunk with a lease, scores the targets that have no verdict
                        yet (per juror), writes them in batches (unique key: run, juror, target,
                        order; inserts ignore conflicts), renews the lease after each batch
    jury_run_finalize -> when every chunk is done: one JuryDecision per item (+ the jury's
                        Annotation for safety/preference), escalated items get queue priority

A worker killed mid-chunk loses at most the batch it was scoring: its lease runs out, the chunk
is claimed again (by the resume on worker start, or by the redelivered message), and the targets
that already have verdicts are skipped.
"""
from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from annotation.models import Annotation, Item, Project, ResponseSafety
from jury import aggregation, judging
from jury.backends.registry import PACKAGED_MODELS
from jury.models import Juror, Jury, JuryChunk, JuryDecision, JuryMember, JuryRun, Task, Verdict

log = logging.getLogger(__name__)

DEFAULT_JURY = "default"
MAX_CHUNK_ATTEMPTS = 5


def chunk_lease_seconds() -> int:
    return settings.JURY_CHUNK_LEASE_S


# --- configuration ---------------------------------------------------------------------------


@transaction.atomic
def juror_create(*, name: str, backend: str, model: str, **options: Any) -> Juror:
    """Create a juror after validating it (unknown packaged model, missing endpoint, unknown
    prompt version are clear errors)."""
    juror = Juror(name=name, backend=backend, model=model, **options)
    juror.full_clean()
    juror.save()
    return juror


@transaction.atomic
def jury_create(*, name: str, jurors: list[tuple[Juror, float]], rule: str = Jury.Rule.MEAN, **options: Any) -> Jury:
    if not jurors:
        raise ValueError("A jury needs at least one juror.")
    jury = Jury(name=name, rule=rule, **options)
    jury.full_clean()
    jury.save()
    for juror, weight in jurors:
        JuryMember.objects.create(jury=jury, juror=juror, weight=weight)
    return jury


@transaction.atomic
def jury_ensure_default() -> Jury:
    """The default jury of the two packaged models (CPU-friendly). Idempotent; never overwrites
    an admin's edits to existing jurors or the jury."""
    members = []
    for key, name in (("smollm2-135m-instruct", "smollm2-135m"), ("gemma3-270m", "gemma3-270m")):
        juror, _ = Juror.objects.get_or_create(
            name=name,
            defaults={
                "backend": Juror.Backend.PACKAGED, "model": key, "prompt_version": "v2",
                "description": PACKAGED_MODELS[key].description, "batch_size": 8, "max_length": 768,
            },
        )
        members.append(juror)
    jury, created = Jury.objects.get_or_create(
        name=DEFAULT_JURY,
        defaults={"rule": Jury.Rule.MEAN, "description": "The two packaged models (SmolLM2-135M, Gemma 3 270M). Weak judges: "
                  "see bench/RESULTS.md. Add stronger jurors for real use."},
    )
    if created:
        for juror in members:
            JuryMember.objects.get_or_create(jury=jury, juror=juror, defaults={"weight": 1.0})
    return jury


# --- runs ------------------------------------------------------------------------------------


def _judge_context(run: JuryRun, prompt_version: str) -> judging.JudgeContext:
    cfg = run.config
    return judging.JudgeContext(
        task=run.task, prompt_version=prompt_version,
        categories=[tuple(c) for c in cfg.get("categories", [])],
        principles=[tuple(p) for p in cfg.get("principles", [])],
        caution_low=cfg["caution_low"], caution_high=cfg["caution_high"],
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
    item_ids: list[int] | None = None,
) -> JuryRun:
    """Create a run over the project's items (or ``item_ids``), split into chunks, and enqueue it
    after commit. Raises ValueError for a task the project cannot do or a jury without jurors."""
    from jury.tasks import run_dispatch_task

    if task not in Task.values:
        raise ValueError(f"Unknown jury task {task!r}; choose one of {Task.values}.")
    members = list(jury.members.select_related("juror").filter(juror__enabled=True).order_by("juror__name"))
    if not members:
        raise ValueError(f"Jury {jury.name!r} has no enabled jurors.")
    principles: list[tuple[int, str, str]] = []
    if task == Task.PRINCIPLES:
        if project.principle_set_id is None:
            raise ValueError("This project has no principle set; the principles task needs one.")
        principles = list(project.principle_set.principles.order_by("order", "code").values_list("id", "code", "text"))
        if not principles:
            raise ValueError("The project's principle set has no principles.")
    categories = judging.judged_categories(
        list(project.taxonomy_version.categories.order_by("order", "code").values_list("code", "name"))
    )
    items = Item.objects.filter(project=project)
    if item_ids is not None:
        items = items.filter(pk__in=item_ids)
    rows = list(items.annotate(n=Count("responses")).order_by("id").values_list("id", "n"))
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
    n = JuryRun.objects.filter(pk=run.pk, status__in=JuryRun.ACTIVE).update(
        status=JuryRun.Status.CANCELLED, finished_at=timezone.now()
    )
    if n != 1:
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


# --- chunks ----------------------------------------------------------------------------------


def jury_chunk_claim(*, chunk_id: int, worker: str) -> tuple[str, float]:
    """Claim a chunk: ("claimed", 0), ("busy", seconds until its lease ends) or ("skip", 0)."""
    now = timezone.now()
    lease = timedelta(seconds=chunk_lease_seconds())
    n = (
        JuryChunk.objects.filter(pk=chunk_id, run__status=JuryRun.Status.RUNNING)
        .filter(Q(status=JuryChunk.Status.PENDING) | Q(status=JuryChunk.Status.RUNNING, lease_until__lt=now))
        .update(status=JuryChunk.Status.RUNNING, lease_until=now + lease, worker=worker[:200], attempts=F("attempts") + 1)
    )
    if n == 1:
        return "claimed", 0.0
    chunk = JuryChunk.objects.filter(pk=chunk_id).select_related("run").first()
    if chunk is None or chunk.status != JuryChunk.Status.RUNNING or chunk.run.status != JuryRun.Status.RUNNING:
        return "skip", 0.0
    return "busy", max(1.0, (chunk.lease_until - now).total_seconds() + 1) if chunk.lease_until else 1.0


def _renew_lease(chunk_id: int, worker: str) -> None:
    JuryChunk.objects.filter(pk=chunk_id, worker=worker[:200], status=JuryChunk.Status.RUNNING).update(
        lease_until=timezone.now() + timedelta(seconds=chunk_lease_seconds())
    )


def _run_is_live(run_id: int) -> bool:
    return JuryRun.objects.filter(pk=run_id, status=JuryRun.Status.RUNNING).exists()


def jury_chunk_process(*, chunk_id: int, worker: str = "") -> str:
    """Judge one claimed chunk. Not one transaction: every scored batch is committed on its own,
    so a kill loses at most one batch. Returns "done", "cancelled", "failed" or "skip".

    Side effects: Verdict rows (insert-only, conflicts ignored), the chunk's status/timings, and
    on the last chunk the run's finalisation (enqueued).
    """
    from jury.backends import get_backend

    chunk = JuryChunk.objects.select_related("run").get(pk=chunk_id)
    run = chunk.run
    if chunk.attempts > MAX_CHUNK_ATTEMPTS:
        _chunk_fail(chunk, f"gave up after {chunk.attempts - 1} attempts (the worker died each time?)")
        return "failed"
    items = {
        item.pk: item
        for item in Item.objects.filter(pk__in=chunk.item_ids).prefetch_related("responses").order_by("id")
    }
    timings: dict[str, Any] = dict(chunk.timings or {})
    for member in run.config["jurors"]:
        juror_id, name = member["id"], member["name"]
        ctx = _judge_context(run, member["prompt_version"])
        done = set(
            Verdict.objects.filter(run=run, juror_id=juror_id, item_id__in=list(items))
            .values_list("target", "order")
        )
        targets: list[judging.Target] = []
        for item in items.values():
            responses = [(r.pk, r.text) for r in sorted(item.responses.all(), key=lambda r: r.position)]
            for target in judging.build_targets(ctx, item.pk, item.prompt, responses):
                if any((target.key, o) not in done for o in target.orders):
                    targets.append(target)
        if not targets:
            continue
        stats = timings.setdefault(name, {"load_s": 0.0, "score_s": 0.0, "verdicts": 0})
        try:
            started = time.perf_counter()
            backend = get_backend(member["spec"])
            stats["load_s"] = round(stats["load_s"] + time.perf_counter() - started, 3)
            step = max(1, int(member["spec"].get("batch_size") or 8))
            for start in range(0, len(targets), step):
                if not _run_is_live(run.pk):
                    _save_timings(chunk.pk, timings)
                    return "cancelled"
                batch = targets[start:start + step]
                requests = [req for t in batch for o in t.orders for req in t.requests[o]]
                t0 = time.perf_counter()
                results = backend.score(requests)
                stats["score_s"] = round(stats["score_s"] + time.perf_counter() - t0, 3)
                stats["verdicts"] += _write_verdicts(run, juror_id, ctx, batch, results)
                _renew_lease(chunk.pk, worker)
        except Exception as exc:  # a juror that cannot judge fails the chunk, not the worker
            log.exception("jury chunk %s failed for juror %s", chunk.pk, name)
            _save_timings(chunk.pk, timings)
            _chunk_fail(chunk, f"{name}: {type(exc).__name__}: {exc}", juror=name)
            return "failed"
    _save_timings(chunk.pk, timings)
    JuryChunk.objects.filter(pk=chunk.pk).update(status=JuryChunk.Status.DONE, finished_at=timezone.now(), error="")
    if not JuryChunk.objects.filter(run=run).exclude(status=JuryChunk.Status.DONE).exists():
        _finalize_after_commit(run.pk)
    return "done"


def _save_timings(chunk_id: int, timings: dict) -> None:
    JuryChunk.objects.filter(pk=chunk_id).update(timings=timings)


@transaction.atomic
def _chunk_fail(chunk: JuryChunk, error: str, juror: str = "") -> None:
    JuryChunk.objects.filter(pk=chunk.pk).update(status=JuryChunk.Status.FAILED, error=error[:2000])
    run = JuryRun.objects.select_for_update().get(pk=chunk.run_id)
    run.errors = list(run.errors or []) + [{"chunk": chunk.index, "juror": juror, "error": error[:1000]}]
    run.error_count = len(run.errors)
    fields = ["errors", "error_count"]
    if run.status == JuryRun.Status.RUNNING:
        run.status = JuryRun.Status.FAILED
        run.finished_at = timezone.now()
        fields += ["status", "finished_at"]
    run.save(update_fields=fields)


@transaction.atomic
def _write_verdicts(run: JuryRun, juror_id: int, ctx: judging.JudgeContext, batch: list[judging.Target], results: list) -> int:
    """Insert the verdicts of whole targets (all orders). Conflicts (a verdict some other attempt
    already wrote) are ignored, so each (run, juror, target, order) exists once."""
    rows: list[Verdict] = []
    cursor = 0
    for target in batch:
        fields_by_order = []
        for order in target.orders:
            n = len(target.requests[order])
            fields_by_order.append(judging.verdict_fields(ctx, target, order, results[cursor:cursor + n]))
            cursor += n
        consistent = judging.position_consistency(fields_by_order) if len(target.orders) > 1 else None
        for fields in fields_by_order:
            rows.append(Verdict(run=run, juror_id=juror_id, item_id=target.item_id, task=run.task,
                                position_consistent=consistent, **fields))
    Verdict.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


# --- finalisation: aggregation, decisions, escalation -----------------------------------------


def jury_run_finalize(*, run_id: int) -> JuryRun | None:
    """Aggregate every item of a finished run into a JuryDecision (once per item and task), write
    the jury's annotation for safety/preference, raise escalated items' queue priority, and mark
    the run done. Idempotent: items that already have a decision are skipped."""
    with transaction.atomic():
        run = JuryRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != JuryRun.Status.RUNNING:
            return run
        if run.chunks.exclude(status=JuryChunk.Status.DONE).exists():
            return run
    decided = set(JuryDecision.objects.filter(run=run).values_list("item_id", flat=True))
    item_ids = [i for chunk in run.chunks.order_by("index") for i in chunk.item_ids if i not in decided]
    for start in range(0, len(item_ids), 200):
        _decide_items(run, item_ids[start:start + 200])
    with transaction.atomic():
        run = JuryRun.objects.select_for_update().get(pk=run_id)
        if run.status != JuryRun.Status.RUNNING:
            return run
        run.decisions_count = run.decisions.count()
        run.escalated_count = run.decisions.filter(escalated=True).count()
        timings: dict[str, dict[str, float]] = {}
        for chunk_timings in run.chunks.values_list("timings", flat=True):
            for name, stats in (chunk_timings or {}).items():
                agg = timings.setdefault(name, {"load_s": 0.0, "score_s": 0.0, "verdicts": 0})
                for key in agg:
                    agg[key] = round(agg[key] + stats.get(key, 0), 3)
        run.timings = timings
        run.status = JuryRun.Status.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["decisions_count", "escalated_count", "timings", "status", "finished_at"])
    return run


@transaction.atomic
def _decide_items(run: JuryRun, item_ids: list[int]) -> None:
    # Two finalisations of one run (a redelivered message) take turns on the run row; the second
    # then sees the first's decisions and skips those items instead of failing on the unique key.
    JuryRun.objects.select_for_update().filter(pk=run.pk).first()
    weights = {m["id"]: m["weight"] for m in run.config["jurors"]}
    names = {m["id"]: m["name"] for m in run.config["jurors"]}
    by_item: dict[int, list[Verdict]] = defaultdict(list)
    for v in Verdict.objects.filter(run=run, item_id__in=item_ids).order_by("target", "juror_id", "order"):
        by_item[v.item_id].append(v)
    items = {i.pk: i for i in Item.objects.filter(pk__in=item_ids).prefetch_related("responses")}
    existing = set(JuryDecision.objects.filter(run=run, item_id__in=item_ids).values_list("item_id", flat=True))
    for item_id in item_ids:
        verdicts = by_item.get(item_id)
        if not verdicts or item_id in existing:
            continue
        decide = {Task.SAFETY: _decide_safety, Task.PREFERENCE: _decide_preference, Task.PRINCIPLES: _decide_principles}[run.task]
        decide(run, items[item_id], verdicts, weights, names)


def _escalate(run: JuryRun, item: Item, confidence: float) -> None:
    """Raise the item's queue priority: the base escalation priority plus up to 10 for doubt.
    A plain UPDATE of the item (only annotation rows are append-only); Greatest keeps it idempotent."""
    priority = int(run.config.get("escalation_priority", 10)) + int(round((1.0 - confidence) * 10))
    Item.objects.filter(pk=item.pk).update(priority=Greatest(F("priority"), Value(priority)))


def _outcome_json(o: aggregation.Outcome) -> dict:
    return {"label": o.label, "probs": {k: round(v, 6) for k, v in o.probs.items()}, "confidence": round(o.confidence, 6),
            "split": o.split, "escalated": o.escalated, "reasons": o.reasons, "votes": o.votes}


def _group(verdicts: list[Verdict]) -> dict[str, list[Verdict]]:
    groups: dict[str, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        groups[v.target].append(v)
    return groups


def _record(run: JuryRun, item: Item, *, label: str, outcomes: dict[str, aggregation.Outcome], details: dict,
            annotation: Annotation | None) -> JuryDecision:
    confidence = min((o.confidence for o in outcomes.values()), default=1.0)
    escalated = any(o.escalated for o in outcomes.values())
    reasons = sorted({f"{target}: {r}" for target, o in outcomes.items() for r in o.reasons})
    decision = JuryDecision.objects.create(
        run=run, item=item, task=run.task, rule=run.config["rule"], label=label, confidence=confidence,
        escalated=escalated, reasons=reasons, details=details, annotation=annotation,
    )
    if escalated:
        _escalate(run, item, confidence)
    return decision


SEVERITY = {"safe": 0, "needs_caution": 1, "unsafe": 2}


def _decide_safety(run: JuryRun, item: Item, verdicts: list[Verdict], weights: dict, names: dict) -> JuryDecision:
    cfg = run.config
    label_fn = aggregation.safety_label_fn(cfg["caution_low"], cfg["caution_high"])
    outcomes: dict[str, aggregation.Outcome] = {}
    categories: dict[str, list[str]] = {}
    details: dict[str, Any] = {"targets": {}}
    for target, group in _group(verdicts).items():
        votes = [aggregation.Vote(juror=names.get(v.juror_id, str(v.juror_id)), probs=v.probs, label=v.label,
                                  weight=weights.get(v.juror_id, 1.0)) for v in group]
        outcome = aggregation.aggregate(
            votes, rule=cfg["rule"], label_fn=label_fn, min_confidence=cfg["min_confidence"],
            escalate_on_split=cfg["escalate_on_split"],
        )
        outcomes[target] = outcome
        # P(category | unsafe) from the jurors' P(unsafe and category), weighted like the rule.
        use_w = cfg["rule"] == "weighted"
        total_w = sum(weights.get(v.juror_id, 1.0) if use_w else 1.0 for v in group)
        joint: dict[str, float] = defaultdict(float)
        for v in group:
            w = weights.get(v.juror_id, 1.0) if use_w else 1.0
            for code, p in (v.category_probs or {}).items():
                joint[code] += w * p / total_w
        p_unsafe = outcome.probs.get("unsafe", 0.0)
        conditional = {code: (p / p_unsafe if p_unsafe else 0.0) for code, p in joint.items()}
        named: list[str] = []
        if outcome.label == "unsafe" and conditional:
            named = [c for c, p in sorted(conditional.items(), key=lambda kv: -kv[1]) if p >= cfg["category_threshold"]]
            named = named or [max(conditional, key=conditional.get)]
        categories[target] = named
        details["targets"][target] = _outcome_json(outcome) | {
            "category_probs": {c: round(p, 6) for c, p in joint.items()}, "categories": named,
            "truncated": any(v.truncated for v in group),
        }
    prompt_key = f"i{item.pk}:prompt"
    annotation = Annotation.objects.create(
        project_id=run.project_id, item=item, source=Annotation.Source.JURY, annotator=None,
        source_detail=cfg["jury"], prompt_label=outcomes[prompt_key].label if prompt_key in outcomes else "",
        prompt_categories=categories.get(prompt_key, []), taxonomy_version_id=cfg["taxonomy_version"],
    )
    rows = []
    for response in item.responses.all():
        key = f"i{item.pk}:r{response.pk}"
        if key in outcomes:
            rows.append(ResponseSafety(annotation=annotation, response=response, label=outcomes[key].label,
                                       categories=categories.get(key, [])))
    ResponseSafety.objects.bulk_create(rows)
    worst = max((o.label for o in outcomes.values()), key=lambda label: SEVERITY.get(label, 0))
    return _record(run, item, label=worst, outcomes=outcomes, details=details, annotation=annotation)


def _pair_votes(group: list[Verdict], weights: dict, names: dict, labels: tuple[str, ...]) -> list[aggregation.Vote]:
    """One vote per juror from both orders: probabilities mapped to the canonical (a, b) frame and
    averaged over the two orders (which cancels a pure position bias)."""
    by_juror: dict[int, list[Verdict]] = defaultdict(list)
    for v in group:
        by_juror[v.juror_id].append(v)
    votes = []
    for juror_id, vs in by_juror.items():
        acc: dict[str, float] = defaultdict(float)
        for v in vs:
            pa, pb = (v.probs["A"], v.probs["B"]) if v.order == 0 else (v.probs["B"], v.probs["A"])
            acc["a"] += pa / len(vs)
            acc["b"] += pb / len(vs)
            if "NA" in labels:
                acc["na"] += v.probs.get("NA", 0.0) / len(vs)
        probs = dict(acc)
        if "NA" not in labels:
            total = probs["a"] + probs["b"]
            probs = {"a": probs["a"] / total, "b": probs["b"] / total}
        consistent = vs[0].position_consistent if len(vs) > 1 else None
        votes.append(aggregation.Vote(juror=names.get(juror_id, str(juror_id)), probs=probs,
                                      label=aggregation.argmax_label(probs), weight=weights.get(juror_id, 1.0),
                                      position_consistent=consistent))
    return votes


def _decide_preference(run: JuryRun, item: Item, verdicts: list[Verdict], weights: dict, names: dict) -> JuryDecision:
    cfg = run.config
    outcomes: dict[str, aggregation.Outcome] = {}
    p_first: dict[tuple[int, int], float] = {}
    details: dict[str, Any] = {"pairs": {}}
    for target, group in _group(verdicts).items():
        votes = _pair_votes(group, weights, names, ("A", "B"))
        outcome = aggregation.aggregate(
            votes, rule=cfg["rule"], label_fn=aggregation.pair_label_fn(cfg["threshold"]),
            min_confidence=cfg["min_confidence"], escalate_on_split=cfg["escalate_on_split"],
        )
        outcomes[target] = outcome
        a, b = group[0].response_id, group[0].response_b_id
        p_first[(a, b)] = outcome.probs["a"]
        details["pairs"][target] = _outcome_json(outcome) | {
            "a": a, "b": b, "position_consistent": {vote.juror: vote.position_consistent for vote in votes},
        }
    response_ids = [r.pk for r in sorted(item.responses.all(), key=lambda r: r.position)]
    ranking = aggregation.ranking_from_pairs(response_ids, p_first)
    details["ranking"] = ranking
    fields: dict[str, Any] = {}
    if len(response_ids) == 2 and p_first:
        (a, b), p = next(iter(p_first.items()))
        if abs(p - 0.5) < 0.05:
            fields = {"pair_a_id": a, "pair_b_id": b, "pair_choice": Annotation.PairChoice.TIE, "pair_strength": 0}
        else:
            strength = 3 if max(p, 1 - p) >= 0.85 else (2 if max(p, 1 - p) >= 0.7 else 1)
            fields = {"pair_a_id": a, "pair_b_id": b, "pair_strength": strength,
                      "pair_choice": Annotation.PairChoice.A if p > 0.5 else Annotation.PairChoice.B}
    annotation = Annotation.objects.create(
        project_id=run.project_id, item=item, source=Annotation.Source.JURY, annotator=None,
        source_detail=cfg["jury"], ranking=ranking, **fields,
    )
    winner = ",".join(str(r) for r in ranking[0]) if ranking else ""
    return _record(run, item, label=winner, outcomes=outcomes, details=details, annotation=annotation)


def _decide_principles(run: JuryRun, item: Item, verdicts: list[Verdict], weights: dict, names: dict) -> JuryDecision:
    """Per principle and pair: the panel's prob_A / prob_B / prob_NA (canonical: A is the pair's
    first response, as in Buyl et al. with order 0) and p_i = sign(prob_A - prob_B), None when NA
    wins or on a tie. The decision's label is the row class: consensus, conflict or indifference."""
    cfg = run.config
    outcomes: dict[str, aggregation.Outcome] = {}
    details: dict[str, Any] = {"principles": {}}
    signs: dict[str, list[int | None]] = defaultdict(list)
    codes = {pid: code for pid, code, _ in cfg["principles"]}
    for target, group in _group(verdicts).items():
        votes = _pair_votes(group, weights, names, ("A", "B", "NA"))
        outcome = aggregation.aggregate(
            votes, rule=cfg["rule"], min_confidence=cfg["min_confidence"], escalate_on_split=cfg["escalate_on_split"],
        )
        outcomes[target] = outcome
        pa, pb, pna = outcome.probs.get("a", 0.0), outcome.probs.get("b", 0.0), outcome.probs.get("na", 0.0)
        p_i = aggregation.principle_preference(pa, pb, pna)
        pair = f"{group[0].response_id}-{group[0].response_b_id}"
        signs[pair].append(p_i)
        details["principles"].setdefault(codes.get(group[0].principle_id, str(group[0].principle_id)), {})[pair] = {
            "prob_A": round(pa, 6), "prob_B": round(pb, 6), "prob_NA": round(pna, 6), "p": p_i,
            "votes": outcome.votes, "position_consistent": {v.juror: v.position_consistent for v in votes},
        }
    classes = {}
    for pair, values in signs.items():
        known = {v for v in values if v is not None}
        classes[pair] = "indifference" if not known else ("conflict" if known == {1, -1} else "consensus")
    details["row_class"] = classes
    label = next(iter(classes.values())) if len(classes) == 1 else ""
    return _record(run, item, label=label, outcomes=outcomes, details=details, annotation=None)


__all__ = [
    "juror_create", "jury_create", "jury_ensure_default", "jury_run_start", "jury_run_dispatch", "jury_run_cancel",
    "jury_run_resume", "jury_runs_resume_all", "jury_chunk_claim", "jury_chunk_process", "jury_run_finalize",
]
