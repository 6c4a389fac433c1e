"""Writes of synthetic edits: templates, starting a run, processing it, cancel and resume.

    template_revise       -> a new EditTemplate version (templates never change in place)
    edit_run_start        -> EditRun(pending) over the chosen source responses; enqueued on commit
    edit_run_process      -> the worker's loop: claim, generate in batches, parse, keep or discard
    edit_run_cancel       -> pending/running -> cancelled; the worker stops at its next batch
    edit_runs_resume_all  -> runs whose worker died go back to pending and are enqueued again

An edit is stored once per (run, source response): a resumed run skips the sources it already
has. A kept edit becomes ``Response(origin=edited, parent=source)`` and its ``edit_review`` item,
through ``annotation.services`` (``edited_response_create`` / ``edit_review_item_create``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from annotation import jobs
from annotation import services as annotation_services
from annotation.models import Annotation, HazardCategory, Item, Project, Response, ResponseSafety
from jury.edits import parsing
from jury.edits.models import Direction, Edit, EditRun, EditTemplate
from jury.edits.prompts import DEFAULT_TEMPLATES, TEMPLATE_FIELDS
from jury.models import ModelSpec

log = logging.getLogger(__name__)

FEEDBACK_SOURCES = ("rationales", "categories", "principles", "instruction")
DEFAULT_OPTIONS: dict[str, Any] = {
    "feedback": list(FEEDBACK_SOURCES),
    "instruction": "",
    "max_extra_words": 5,
    "min_ratio": 0.01,
    "max_ratio": 0.6,
    "seed": 0,
    "batch_size": 4,
    "limit": None,
    "item_ids": None,
    "max_new_tokens": 256,
    "temperature": 0.0,
}
CORRUPT_DEFAULT_FLAW = "a factual error, a dropped safety caveat, or a harmful detail"


# --- templates -------------------------------------------------------------------------------------


def template_check(text: str) -> None:
    """Raise ValueError when ``text`` is not a usable template (unknown or missing fields)."""
    import string

    names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    unknown = names - set(TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(f"Unknown template fields {sorted(unknown)}; use {list(TEMPLATE_FIELDS)}.")
    if "response" not in names:
        raise ValueError("A template must contain {response}.")


def default_template(direction: str) -> EditTemplate:
    """The newest version of the direction's default template (version 1 is created if missing)."""
    for name, (dir_, text) in DEFAULT_TEMPLATES.items():
        if dir_ == direction:
            found = EditTemplate.objects.filter(name=name).order_by("-version").first()
            if found is None:
                try:
                    with transaction.atomic():
                        found = EditTemplate.objects.create(name=name, direction=dir_, version=1, text=text,
                                                            notes="Default (REFERENCE §3).")
                except IntegrityError:
                    found = EditTemplate.objects.filter(name=name).order_by("-version").first()
            assert found is not None
            return found
    raise ValueError(f"Unknown direction {direction!r}; choose one of {Direction.values}.")


@transaction.atomic
def template_revise(*, template: EditTemplate, text: str, user=None, notes: str = "") -> EditTemplate:
    """Store an edited template as the next version of its name (the old version stays, and so do
    the runs that used it)."""
    template_check(text)
    top = EditTemplate.objects.select_for_update().filter(name=template.name).aggregate(v=Max("version"))["v"] or 0
    return EditTemplate.objects.create(
        name=template.name, direction=template.direction, version=top + 1, text=text, notes=notes, created_by=user,
    )


def templates_latest() -> list[EditTemplate]:
    """The newest version of every template name (defaults seeded if missing)."""
    for direction in Direction.values:
        default_template(direction)
    latest: dict[str, EditTemplate] = {}
    for template in EditTemplate.objects.order_by("name", "-version"):
        latest.setdefault(template.name, template)
    return list(latest.values())


# --- feedback ----------------------------------------------------------------------------------------


def gather_feedback(response: Response, *, sources: list[str], instruction: str) -> dict[str, str]:
    """What drives an improve edit of ``response``: the current human annotations' rationales on
    its item, the unsafe categories they chose for it, the principles they cited, and the
    researcher's instruction. Source name -> text (empty sources left out)."""
    feedback: dict[str, str] = {}
    current = Annotation.objects.current().filter(item_id=response.item_id, source=Annotation.Source.HUMAN)
    if "rationales" in sources:
        rationales = [r.strip() for r in current.exclude(rationale="").values_list("rationale", flat=True)]
        if rationales:
            feedback["rationales"] = "\n".join(f"- {r}" for r in rationales)
    if "categories" in sources:
        codes: list[str] = []
        rows = ResponseSafety.objects.filter(annotation__in=current, response=response, label="unsafe")
        for cats in rows.values_list("categories", flat=True):
            codes.extend(c for c in cats or [] if c not in codes)
        if codes:
            item = Item.objects.select_related("project").get(pk=response.item_id)
            names = dict(HazardCategory.objects.filter(version_id=item.project.taxonomy_version_id, code__in=codes)
                         .values_list("code", "name"))
            feedback["categories"] = "Judged unsafe for: " + "; ".join(f"{names.get(c, c)} ({c})" for c in codes)
    if "principles" in sources:
        texts = list(dict.fromkeys(current.filter(principles__isnull=False).values_list("principles__text", flat=True)))
        if texts:
            feedback["principles"] = "Fails the principles:\n" + "\n".join(f"- {t}" for t in texts)
    if "instruction" in sources and instruction.strip():
        feedback["instruction"] = instruction.strip()
    return feedback


def feedback_text(direction: str, feedback: dict[str, str]) -> str:
    if direction == Direction.CORRUPT:
        return "Flaw to plant: " + (feedback.get("instruction") or CORRUPT_DEFAULT_FLAW)
    return "\n\n".join(feedback[k] for k in FEEDBACK_SOURCES if k in feedback) or "(no feedback)"


# --- runs --------------------------------------------------------------------------------------------


def options_clean(direction: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """The run's options with defaults filled in; ValueError for values out of range."""
    merged = {**DEFAULT_OPTIONS, **{k: v for k, v in (options or {}).items() if v is not None}}
    unknown = set(merged) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ValueError(f"Unknown options {sorted(unknown)}.")
    merged["feedback"] = [s for s in merged["feedback"] if s in FEEDBACK_SOURCES]
    if direction not in Direction.values:
        raise ValueError(f"Unknown direction {direction!r}; choose one of {Direction.values}.")
    if not 0 <= float(merged["min_ratio"]) < float(merged["max_ratio"]):
        raise ValueError("The word-distance band needs 0 <= min_ratio < max_ratio.")
    if int(merged["max_extra_words"]) < 0 or int(merged["batch_size"]) < 1 or int(merged["max_new_tokens"]) < 1:
        raise ValueError("max_extra_words must be >= 0, batch_size and max_new_tokens >= 1.")
    if merged["limit"] is not None and int(merged["limit"]) < 1:
        raise ValueError("limit must be at least 1.")
    merged["instruction"] = str(merged["instruction"] or "")[:4000]
    return merged


def sources_for(project: Project, direction: str, options: dict[str, Any]) -> list[int]:
    """The responses to edit: the judged (imported/generated) responses of the project's judge
    items, in item then position order. Improve edits need feedback: without an instruction only
    responses with annotator feedback are taken."""
    responses = Response.objects.judged().filter(item__project=project, item__kind=Item.Kind.JUDGE)
    if options["item_ids"]:
        responses = responses.filter(item_id__in=[int(i) for i in options["item_ids"]])
    ids: list[int] = []
    for response in responses.order_by("item_id", "position"):
        if direction == Direction.IMPROVE and not (
            "instruction" in options["feedback"] and options["instruction"].strip()
        ):
            if not gather_feedback(response, sources=options["feedback"], instruction=""):
                continue
        ids.append(response.pk)
        if options["limit"] and len(ids) >= int(options["limit"]):
            break
    return ids


@transaction.atomic
def edit_run_start(
    *, project: Project, editor: ModelSpec, direction: str, template: EditTemplate | None = None,
    options: dict[str, Any] | None = None, user=None, enqueue: bool = True,
) -> EditRun:
    """Create a run over the chosen responses and enqueue it after commit (``enqueue=False``: the
    caller processes it itself, e.g. ``synth_edits --inline``)."""
    from jury.edits.tasks import edit_run_task

    clean = options_clean(direction, options)
    template = template or default_template(direction)
    if template.direction != direction:
        raise ValueError(f"Template {template.label} is for {template.direction} edits, not {direction}.")
    clean["response_ids"] = sources_for(project, direction, clean)
    run = EditRun.objects.create(
        project=project, editor=editor, editor_spec={"name": editor.name, **editor.as_dict()}, direction=direction,
        template=template, options=clean, total=len(clean["response_ids"]), created_by=user,
    )
    if enqueue:
        edit_run_task.delay_on_commit(run.pk)
    return run


@transaction.atomic
def edit_run_cancel(*, run: EditRun) -> EditRun:
    if not jobs.cancel(model=EditRun, pk=run.pk):
        raise ValueError(f"Edit run #{run.pk} is {run.status}; only pending or running runs can be cancelled.")
    run.refresh_from_db()
    return run


def edit_runs_resume_all() -> list[int]:
    """Hand back running runs whose worker is gone, and enqueue every pending run (a claim is
    exclusive, so a run enqueued twice is processed once). Returns the ids enqueued."""
    from jury.edits.tasks import edit_run_task

    handed = jobs.hand_back_abandoned(queryset=EditRun.objects.all(), enqueue=edit_run_task.delay)
    pending = list(EditRun.objects.filter(status=EditRun.Status.PENDING).exclude(pk__in=handed)
                   .values_list("pk", flat=True))
    for pk in pending:
        transaction.on_commit(partial(edit_run_task.delay, pk))
    return handed + pending


# --- processing --------------------------------------------------------------------------------------


@dataclass
class Source:
    response: Response
    feedback: dict[str, str]
    context: str


def _render(template: EditTemplate, response: Response, *, feedback: str, max_extra_words: int) -> str:
    prompt = "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in (response.item.prompt or [])
                       if isinstance(m, dict))
    return template.text.format(prompt=prompt, response=response.text, feedback=feedback,
                                max_extra_words=max_extra_words)


def edit_record(*, run: EditRun, response: Response, feedback: dict[str, str], raw: str) -> Edit | None:
    """Parse one output, keep or discard it, and store it (once: None when the run already has an
    edit of this source)."""
    opts = run.options
    parsed = parsing.parse_edit_output(raw)
    bounds = parsing.Bounds(min_ratio=float(opts["min_ratio"]), max_ratio=float(opts["max_ratio"]),
                            max_extra_words=int(opts["max_extra_words"]))
    ratio, reason = parsing.judge_edit(response.text, parsed, bounds)
    try:
        with transaction.atomic():
            edit = Edit(
                run=run, item_id=response.item_id, source_response=response, direction=run.direction,
                feedback=feedback, raw_output=raw, operations=parsed.operations[:50], parse_mode=parsed.mode,
                word_distance=ratio,
            )
            if reason:
                edit.status, edit.discard_reason = Edit.Status.DISCARDED, reason[:300]
                edit.save()
                return edit
            editor = run.editor_spec.get("name") or run.editor.name
            edited = annotation_services.edited_response_create(
                response, parsed.text, model_name=editor,
                metadata={"edit_run": run.pk, "direction": run.direction, "template": run.template.label},
            )
            edit.status, edit.edited_response = Edit.Status.KEPT, edited
            edit.save()
            edit.review_item = annotation_services.edit_review_item_create(edited, meta={
                "direction": run.direction,
                "feedback": feedback_text(run.direction, feedback),
                "editor": editor,
                "template": {"name": run.template.name, "version": run.template.version},
                "run": run.pk,
                "word_distance": ratio,
                "operations": parsed.operations[:50],
            })
            edit.save(update_fields=["review_item"])
            return edit
    except IntegrityError:
        if Edit.objects.filter(run=run, source_response=response).exists():
            return None  # a second worker (or a resumed one) stored it first
        raise


def _counts(run_id: int) -> dict[str, int]:
    edits = Edit.objects.filter(run_id=run_id)
    kept = edits.filter(status=Edit.Status.KEPT).count()
    discarded = edits.filter(status=Edit.Status.DISCARDED).count()
    failed = edits.filter(status=Edit.Status.DISCARDED, discard_reason__startswith="unparseable").count()
    return {"processed": kept + discarded, "kept_count": kept, "discarded_count": discarded, "failed_count": failed}


def edit_run_process(*, run_id: int, backend=None) -> str:
    """Run an edit job to the end in this worker (the task calls it). Returns the final status,
    or "skipped" when another worker holds the run. ``backend`` replaces the editor (the bench)."""
    if not jobs.claim(model=EditRun, pk=run_id, attempts=F("attempts") + 1):
        return "skipped"
    run = EditRun.objects.select_related("template", "editor").get(pk=run_id)
    try:
        status = _process(run, backend)
    except Exception as exc:  # the run records why; the worker goes on
        log.exception("edit run %s failed", run_id)
        EditRun.objects.filter(pk=run_id, status=EditRun.Status.RUNNING).update(
            status=EditRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now(),
            **_counts(run_id),
        )
        return EditRun.Status.FAILED
    return status


def _process(run: EditRun, backend) -> str:
    from jury.backends import get_backend

    opts = run.options
    started = time.perf_counter()
    if backend is None:
        backend = get_backend(run.editor_spec or run.editor.as_dict())
    load_s = time.perf_counter() - started
    done = set(Edit.objects.filter(run=run).values_list("source_response_id", flat=True))
    todo = [rid for rid in opts.get("response_ids", []) if rid not in done]
    batch_size = int(opts["batch_size"])
    gen_s = 0.0
    generated = 0
    for start in range(0, len(todo), batch_size):
        if EditRun.objects.filter(pk=run.pk).values_list("status", flat=True).first() != EditRun.Status.RUNNING:
            return EditRun.Status.CANCELLED  # cancelled (or handed back) while we worked
        ids = todo[start:start + batch_size]
        by_id = {r.pk: r for r in Response.objects.filter(pk__in=ids).select_related("item")}
        sources: list[Source] = []
        for rid in ids:
            response = by_id.get(rid)
            if response is None:
                continue  # deleted since the run started
            feedback = gather_feedback(response, sources=opts["feedback"], instruction=opts["instruction"])
            if run.direction == Direction.CORRUPT:
                feedback = {"instruction": opts["instruction"]} if opts["instruction"].strip() else {}
            context = backend.frame_user(_render(run.template, response, feedback=feedback_text(run.direction, feedback),
                                                 max_extra_words=int(opts["max_extra_words"])))
            sources.append(Source(response=response, feedback=feedback, context=context))
        if not sources:
            continue
        t0 = time.perf_counter()
        outputs = backend.generate_texts(
            [s.context for s in sources], max_new_tokens=int(opts["max_new_tokens"]),
            temperature=float(opts["temperature"]), seed=int(opts["seed"]) if opts["seed"] is not None else None,
        )
        gen_s += time.perf_counter() - t0
        generated += len(sources)
        for source, raw in zip(sources, outputs):
            edit_record(run=run, response=source.response, feedback=source.feedback, raw=raw)
        jobs.progress(model=EditRun, pk=run.pk, **_counts(run.pk))
    timings = {"load_s": round(load_s, 3), "generate_s": round(gen_s, 3),
               "edits_per_s": round(generated / gen_s, 4) if gen_s else None}
    updated = EditRun.objects.filter(pk=run.pk, status=EditRun.Status.RUNNING).update(
        status=EditRun.Status.DONE, finished_at=timezone.now(), timings=timings, **_counts(run.pk),
    )
    return EditRun.Status.DONE if updated else EditRun.Status.CANCELLED
