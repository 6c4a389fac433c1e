"""Finalisation: every item of a finished run becomes one ``JuryDecision``.

The decision itself is computed by the pure functions in ``jury.services.decisions``; this module
reads the verdicts, writes the decisions and hands the jury's judgment to
:func:`jury_judgment_record`, the ONE place where the jury writes ``annotation`` data
(``Annotation`` / ``ResponseSafety`` rows and ``Item.priority``).
"""
from __future__ import annotations

import importlib
import logging
import re

from django.db import transaction
from django.utils import timezone

from annotation import services as annotation_services
from annotation.judgments import Judgment, JudgmentInvalid, ResponseLabel, response_letter
from annotation.models import Annotation, Item
from annotation.services import PreferenceIn
from jury.models import JuryChunk, JuryDecision, JuryRun, Verdict
from jury.services.decisions import Decision, JuryJudgment, VerdictRow, decide
from jury.services.runs import run_items_with_responses

logger = logging.getLogger(__name__)

FINALIZE_BATCH = 200

# After-run hooks: "module:function" paths other apps register (exports.guard raises the queue
# priority of items its guard juror is unsure of), so jury imports none of them. Each is called as
# ``function(run=run)`` once every item of the run is decided, before the run is marked done: a
# finalisation that dies midway is rerun and calls them again, so a hook must be idempotent. A
# hook that fails is logged and does not keep the run from finishing.
_AFTER_RUN_HOOKS: list[str] = []


def register_after_run_hook(path: str) -> None:
    """Register ``"module:function"`` (idempotent)."""
    if path not in _AFTER_RUN_HOOKS:
        _AFTER_RUN_HOOKS.append(path)


def _run_after_run_hooks(run: JuryRun) -> None:
    for path in _AFTER_RUN_HOOKS:
        module, _, name = path.partition(":")
        try:
            getattr(importlib.import_module(module), name)(run=run)
        except Exception:
            logger.exception("after-run hook %s failed on jury run %s", path, run.pk)

_VERDICT_FIELDS = ("item_id", "juror_id", "target", "order", "label", "probs", "category_probs", "truncated",
                   "position_consistent", "response_id", "response_b_id", "principle_id")


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
    for start in range(0, len(item_ids), FINALIZE_BATCH):
        _decide_items(run, item_ids[start:start + FINALIZE_BATCH])
    _run_after_run_hooks(run)
    with transaction.atomic():
        run = JuryRun.objects.select_for_update().get(pk=run_id)
        if run.status != JuryRun.Status.RUNNING:
            return run
        run.decisions_count = run.decisions.count()
        run.escalated_count = run.decisions.filter(escalated=True).count()
        run.timings = sum_timings(run.chunks.values_list("timings", flat=True))
        run.status = JuryRun.Status.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["decisions_count", "escalated_count", "timings", "status", "finished_at"])
    return run


def sum_timings(per_chunk) -> dict[str, dict[str, float]]:
    """The chunks' per-juror timings added up (pure)."""
    timings: dict[str, dict[str, float]] = {}
    for chunk_timings in per_chunk:
        for name, stats in (chunk_timings or {}).items():
            agg = timings.setdefault(name, {"load_s": 0.0, "score_s": 0.0, "verdicts": 0})
            for key in agg:
                agg[key] = round(agg[key] + stats.get(key, 0), 3)
    return timings


@transaction.atomic
def _decide_items(run: JuryRun, item_ids: list[int]) -> None:
    # Two finalisations of one run (a redelivered message) take turns on the run row; the second
    # then sees the first's decisions and skips those items instead of failing on the unique key.
    JuryRun.objects.select_for_update().filter(pk=run.pk).first()
    by_item: dict[int, list[VerdictRow]] = {}
    for row in (Verdict.objects.filter(run=run, item_id__in=item_ids).order_by("target", "juror_id", "order")
                .values(*_VERDICT_FIELDS)):
        by_item.setdefault(row.pop("item_id"), []).append(VerdictRow(**row))
    items = {i.pk: i for i in run_items_with_responses(run, item_ids)}
    existing = set(JuryDecision.objects.filter(run=run, item_id__in=item_ids).values_list("item_id", flat=True))
    for item_id in item_ids:
        verdicts = by_item.get(item_id)
        if not verdicts or item_id in existing:
            continue
        item = items[item_id]
        response_ids = [r.pk for r in sorted(item.responses.all(), key=lambda r: r.position)]
        decision = decide(run.task, run.config, item_id=item_id, response_ids=response_ids, verdicts=verdicts)
        annotation = jury_judgment_record(run=run, item=item, decision=decision, response_ids=response_ids)
        juror_judgments_record(run=run, item=item, verdicts=verdicts, response_ids=response_ids)
        JuryDecision.objects.create(
            run=run, item=item, task=run.task, rule=run.config["rule"], label=decision.label,
            confidence=decision.confidence, escalated=decision.escalated, reasons=decision.reasons,
            details=decision.details, annotation=annotation,
        )


def jury_judgment_record(*, run: JuryRun, item: Item, decision: Decision, response_ids: list[int]) -> Annotation | None:
    """Record the jury's judgment of one item through ``annotation``'s judgment service (checked by
    the machine rules of ``annotation.judgments``), and raise the queue priority of an escalated
    item with the decision's reasons, which the adjudication page shows.

    Returns the new append-only ``Annotation(source="jury")``, or None when the task records none
    (principles: the panel's p_i are recorded as ``PrinciplePreference`` rows instead). Runs inside
    the caller's transaction.
    """
    annotation = None
    if run.task == "principles":
        _preferences_record(run, item, decision.details, source=Annotation.Source.JURY, rater=f"run{run.pk}",
                            name=run.config["jury"])
    judgment: JuryJudgment | None = decision.judgment
    if judgment is not None:
        annotation = annotation_services.judgment_record(
            project=run.project, item_id=item.pk, source=Annotation.Source.JURY, source_detail=run.config["jury"],
            judgment=as_judgment(judgment), shown_order=judged_order(judgment, response_ids), store_shown_order=False,
            taxonomy_version_id=run.config["taxonomy_version"] if judgment.with_taxonomy else None,
        )
    if decision.priority is not None:
        annotation_services.item_priority_raise(
            item=item, priority=decision.priority, source="jury", source_detail=f"run {run.pk}",
            reason=f"jury {run.config['jury']} ({run.task}): "
            + ("; ".join(readable_reason(r, response_ids) for r in decision.reasons) or "escalated"),
        )
    return annotation


def as_judgment(judgment: JuryJudgment) -> Judgment:
    """The jury's judgment in the shape ``annotation``'s judgment service checks (pure)."""
    return Judgment(
        ranking=judgment.ranking or None,
        pair_choice=judgment.pair.get("pair_choice", ""),
        pair_strength=judgment.pair.get("pair_strength"),
        prompt_label=judgment.prompt_label,
        prompt_categories=tuple(judgment.prompt_categories),
        response_labels={rid: ResponseLabel(label=label, categories=tuple(categories))
                         for rid, label, categories in judgment.response_safety},
    )


def judged_order(judgment: JuryJudgment, response_ids: list[int]) -> list[int]:
    """The item's responses as judged: a pair is the first two of the order it was judged in (pure)."""
    shown = list(response_ids)
    if judgment.pair:
        a, b = judgment.pair["pair_a_id"], judgment.pair["pair_b_id"]
        shown = [a, b] + [r for r in shown if r not in (a, b)]
    return shown


GUARD_BACKENDS = frozenset({"guard-classifier"})


def juror_rater(run: JuryRun, member: dict) -> tuple[str, str, str]:
    """(source, stored rater id, readable name) of one juror of a run: source ``guard`` for a guard
    model on the panel, else ``juror``; the rater id ``run<id>:<juror>`` (one record per item and
    run); the name ``<juror>/<model>`` (the model's last path part), so the same juror name on
    another model is another rater in the metrics."""
    spec = member.get("spec") or {}
    source = Annotation.Source.GUARD if spec.get("backend") in GUARD_BACKENDS else Annotation.Source.JUROR
    model = str(spec.get("model") or "").rstrip("/").rsplit("/", 1)[-1]
    name = f"{member['name']}/{model}" if model else str(member["name"])
    return source, annotation_services.machine_rater_key(batch=f"run{run.pk}", name=member["name"]), name


def juror_judgments_record(*, run: JuryRun, item: Item, verdicts: list[VerdictRow], response_ids: list[int]) -> int:
    """Record each juror's own answer on one item through ``annotation`` as a rater of its own: the
    run's rule applied to a panel of that juror alone (``Annotation(source=juror|guard)`` for safety
    and preference, ``PrinciplePreference`` rows for principles). These records feed the metrics only
    (agreement matrices, discretion); no queue, consensus, export or adjudication reads them. A
    juror's judgment the machine rules refuse (e.g. a ranking left incomplete by failed verdicts) is
    logged and skipped. Returns how many jurors were recorded. Runs inside the caller's transaction."""
    recorded = 0
    for member in run.config.get("jurors", []):
        mine = [v for v in verdicts if v.juror_id == member["id"]]
        if not mine:
            continue
        alone = {**run.config, "jurors": [member]}
        decision = decide(run.task, alone, item_id=item.pk, response_ids=response_ids, verdicts=mine)
        source, rater, name = juror_rater(run, member)
        if run.task == "principles":
            recorded += _preferences_record(run, item, decision.details, source=source, rater=rater, name=name)
            continue
        judgment = decision.judgment
        if judgment is None:
            continue
        try:
            annotation_services.machine_rater_record(
                project=run.project, item_id=item.pk, judgment=as_judgment(judgment), source=source, rater=rater,
                name=name, shown_order=judged_order(judgment, response_ids),
                taxonomy_version_id=run.config["taxonomy_version"] if judgment.with_taxonomy else None,
            )
        except JudgmentInvalid as exc:
            logger.warning("juror %s on item %s of run %s not recorded: %s", member["name"], item.pk, run.pk, exc)
            continue
        recorded += 1
    return recorded


def _preferences_record(run: JuryRun, item: Item, details: dict, *, source: str, rater: str, name: str) -> int:
    """Record one judge's p_i of one item; a refusal (the project's principle set changed since the
    run started, a response removed) is logged and leaves the decision standing (the service checks
    everything before it writes, so the transaction stays usable). 1 when recorded, else 0."""
    try:
        annotation_services.principle_preferences_record(
            project=run.project, preferences=principle_preferences(run, item.pk, details), source=source,
            rater=rater, source_detail=name,
        )
    except ValueError as exc:
        logger.warning("p_i of %s on item %s of run %s not recorded: %s", name, item.pk, run.pk, exc)
        return 0
    return 1


def principle_preferences(run: JuryRun, item_id: int, details: dict) -> list[PreferenceIn]:
    """The p_i of a principles decision's ``details`` (``jury.services.decisions.decide_principles``)
    as rows for ``annotation.services.principle_preferences_record`` (pure)."""
    ids = {code: pid for pid, code, _ in run.config.get("principles", [])}
    out = []
    for code, pairs in (details.get("principles") or {}).items():
        principle_id = ids.get(code)
        if principle_id is None:
            continue
        for pair, cell in pairs.items():
            a, _, b = pair.partition("-")
            out.append(PreferenceIn(
                item_id=item_id, pair_a_id=int(a), pair_b_id=int(b), principle_id=principle_id,
                prob_a=cell["prob_A"], prob_b=cell["prob_B"], prob_na=cell.get("prob_NA", 0.0),
                preference=cell.get("p"),
            ))
    return out


_TARGET = re.compile(r"^i\d+:(?:(?P<prompt>prompt)|r(?P<r>\d+)|(?:(?P<code>[^:]+):)?p(?P<a>\d+)-(?P<b>\d+))$")


def readable_reason(reason: str, response_ids: list[int]) -> str:
    """A decision reason (``"<target key>: <why>"``, target keys as ``jury.judging`` builds them) as
    the adjudication page names things: the prompt, response B, A vs B, never database ids.

    >>> ids = [40, 41, 42]
    >>> readable_reason("i9:prompt: jurors disagree", ids), readable_reason("i9:r41: low confidence", ids)
    ('prompt: jurors disagree', 'response B: low confidence')
    >>> readable_reason("i9:p40-42: not unanimous", ids), readable_reason("i9:P3:p41-40: jurors disagree", ids)
    ('A vs C: not unanimous', 'P3, B vs A: jurors disagree')
    """
    target, sep, why = reason.partition(": ")
    m = _TARGET.match(target)
    if not sep or m is None:
        return reason
    index = {rid: n for n, rid in enumerate(response_ids)}

    def name(rid: str) -> str:
        n = index.get(int(rid))
        return response_letter(n) if n is not None else "a removed response"

    if m["prompt"]:
        label = "prompt"
    elif m["r"]:
        label = f"response {name(m['r'])}"
    else:
        label = (f"{m['code']}, " if m["code"] else "") + f"{name(m['a'])} vs {name(m['b'])}"
    return f"{label}: {why}"
