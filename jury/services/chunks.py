"""Chunk processing: claim a chunk with a lease, score the targets without verdicts, write them.

A worker killed mid-chunk loses at most the batch it was scoring: its lease runs out, the chunk
is claimed again (by the resume on worker start, or by the redelivered message), and the targets
that already have verdicts are skipped.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotation import jobs
from annotation.models import TaxonomyVersion
from jury import judging
from jury.models import JuryChunk, JuryRun, Verdict
from jury.services.runs import _finalize_after_commit, run_items_with_responses

log = logging.getLogger(__name__)

MAX_CHUNK_ATTEMPTS = 5


def chunk_lease_seconds() -> int:
    return settings.JURY_CHUNK_LEASE_S


def _judge_context(run: JuryRun, prompt_version: str) -> judging.JudgeContext:
    cfg = run.config
    return judging.JudgeContext(
        task=run.task, prompt_version=prompt_version,
        categories=[tuple(c) for c in cfg.get("categories", [])],
        principles=[tuple(p) for p in cfg.get("principles", [])],
        caution_low=cfg["caution_low"], caution_high=cfg["caution_high"],
    )


def jury_chunk_claim(*, chunk_id: int, worker: str) -> tuple[str, float]:
    """Claim a chunk of a RUNNING run with a lease of ``JURY_CHUNK_LEASE_S``: ("claimed", 0),
    ("busy", seconds until its lease ends) or ("skip", 0). See ``annotation.jobs.lease_claim``."""
    result = jobs.lease_claim(model=JuryChunk, pk=chunk_id, lease_s=chunk_lease_seconds(), worker=worker,
                              only_if=Q(run__status=JuryRun.Status.RUNNING))
    return result.state, result.wait_s


def _renew_lease(chunk_id: int, worker: str) -> None:
    jobs.lease_renew(model=JuryChunk, pk=chunk_id, lease_s=chunk_lease_seconds(), worker=worker)


def _backend_spec(run: JuryRun, spec: dict[str, Any]) -> dict[str, Any]:
    """The juror's spec as its backend gets it. A guard juror also gets the run's taxonomy version
    (``slug:version``), so it reads the project's categories through the crosswalk from its own."""
    if spec.get("backend") != "guard" or spec.get("taxonomy"):
        return spec
    version = TaxonomyVersion.objects.select_related("taxonomy").filter(pk=run.config.get("taxonomy_version")).first()
    return {**spec, "taxonomy": f"{version.taxonomy.slug}:{version.version}"} if version is not None else spec


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
        for item in run_items_with_responses(run, chunk.item_ids).order_by("id")
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
            spec = _backend_spec(run, member["spec"])
            _set_stage(chunk.pk, f"{name}: {preparing_text(spec)}")
            backend = get_backend(spec)
            stats["load_s"] = round(stats["load_s"] + time.perf_counter() - started, 3)
            _set_stage(chunk.pk, f"{name}: judging")
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
    JuryChunk.objects.filter(pk=chunk.pk).update(
        status=JuryChunk.Status.DONE, finished_at=timezone.now(), error="", stage=""
    )
    if not JuryChunk.objects.filter(run=run).exclude(status=JuryChunk.Status.DONE).exists():
        _finalize_after_commit(run.pk)
    return "done"


def preparing_text(spec: dict[str, Any]) -> str:
    """What the run page says while a juror's model loads: a packaged model converted on first use
    takes minutes on CPU (Gemma 3: about ten), so say so rather than show a stalled 0%."""
    if spec.get("backend") == "packaged":
        from jury.backends import packaged

        if not packaged.is_converted(spec["model"]):
            return f"preparing the model (converting {spec['model']} on first use; minutes on a CPU)"
    return "loading the model"


def _set_stage(chunk_id: int, stage: str) -> None:
    JuryChunk.objects.filter(pk=chunk_id).update(stage=stage[:200])


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

