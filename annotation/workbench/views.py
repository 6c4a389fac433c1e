"""Workbench pages (htmx). Each view: parse → authorise (annotation.roles) → one service → render.

One template per page, with named partials: an htmx request gets ``...html#task`` (the item form,
progress and confirmation), a plain request the whole page. Every form posts to a real URL and
works without JavaScript (a redirect after success, the re-shown form after an error).
"""
from __future__ import annotations

import logging
import re
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from annotation import roles
from annotation.guidelines import guidelines_html
from annotation.models import Assignment, Item, Project, Response
from annotation.prompts import prompt_messages
from annotation.selectors import edit_review_outcomes
from annotation.workbench import review, selectors, services
from annotation.workbench.forms import attach_errors, form_state, judgment_from_post
from annotation.workbench.judgments import JudgmentInvalid, StaleAssignment, WorkbenchError, mode_parts

logger = logging.getLogger(__name__)

# An item id as a form may post it: ASCII digits that fit a bigint ("²".isdigit() is True in Python).
_ITEM_ID = re.compile(r"[0-9]{1,18}")


class WorkbenchRequest(HttpRequest):
    """What every view here gets (for type checking only; no instance is made): ``htmx`` is set by
    django_htmx's HtmxMiddleware (settings.MIDDLEWARE), and ``login_required`` lets only a signed-in
    user through."""

    htmx: HtmxDetails
    user: User


def _annotating_project(request: WorkbenchRequest, slug: str) -> Project:
    project, _role = roles.get_project_for_member(request.user, slug)
    return project


# --- The workbench -----------------------------------------------------------------------------------


def _judgment_form(project: Project, item: Item, responses: list[Response], *, data=None, errors=None,
                   default_label: str = "") -> dict:
    """What the judgment form shows, for the annotator's task and the adjudicator's decision alike:
    the item, its prompt, the form state (fresh, or a re-shown POST with its errors) and the
    project's categories and principles."""
    wants_ranking, wants_pair, wants_safety = mode_parts(project.mode)
    state = form_state(responses, data, default_label=default_label)
    if errors:
        attach_errors(state, errors)
    return {
        "project": project,
        "item": item,
        "messages_": prompt_messages(item.prompt),
        "state": state,
        "wants_ranking": wants_ranking,
        "wants_pair": wants_pair,
        "wants_safety": wants_safety,
        "rank_choices": list(range(1, len(responses) + 1)),
        "categories": selectors.pickable_categories(project),
        "principles": selectors.principles(project),
        "confidence_choices": [1, 2, 3, 4, 5],
        "pair": state.responses[:2] if wants_pair else [],
        "place": selectors.item_place(item),
    }


def _task_context(
    request: WorkbenchRequest, project: Project, assignment: Assignment | None, *, data=None, errors=None,
    flash: str = "", stale: str = "", key: str = "", skip_error: str = "", skip_action: str = "",
) -> dict:
    wants_ranking, wants_pair, wants_safety = mode_parts(project.mode)
    ctx: dict = {
        "project": project,
        "assignment": assignment,
        "wants_ranking": wants_ranking,
        "wants_pair": wants_pair,
        "wants_safety": wants_safety,
        "flash": flash,
        "stale": stale,
        "skip_error": skip_error,  # a refused skip or flag: shown beside its form, not as a stale item
        "skip_action": skip_action,
        "progress": selectors.progress(project, request.user),
        "undo": (undo := selectors.last_undoable(project, request.user)),
        "undo_place": selectors.item_place_by_id(project, undo.item_id) if undo is not None else None,
        "skip_reasons": Assignment.SkipReason.choices,
        "flag_kinds": Assignment.Flag.choices,
    }
    if assignment is None:
        return ctx
    if assignment.item.kind == Item.Kind.EDIT_REVIEW:  # the edit review task: its own template (review.html)
        under = review.edit_under_review(assignment.item)
        ctx.update(
            item=assignment.item, messages_=prompt_messages(assignment.item.prompt), under=under,
            review=review.review_state(under.edit, data, errors), verdicts=review.VERDICTS,
            confidence_choices=[1, 2, 3, 4, 5], idempotency_key=key or uuid.uuid4().hex,
            place=selectors.item_place(assignment.item),
        )
        return ctx
    default_label = "safe" if project.preselect_safe else ""
    ctx.update(
        _judgment_form(
            project, assignment.item, selectors.responses_in_order(assignment), data=data, errors=errors,
            default_label=default_label,
        ),
        idempotency_key=key or uuid.uuid4().hex,
        suggestion=selectors.jury_suggestion(project, assignment.item_id),
    )
    return ctx


def _render_task(request: WorkbenchRequest, ctx: dict, *, status: int = 200) -> HttpResponse:
    page = "annotation/workbench/review.html" if "review" in ctx else "annotation/workbench/workbench.html"
    if request.htmx:
        return render(request, page + "#task", ctx, status=status)
    ctx["guidelines"] = guidelines_html(ctx["project"].guidelines)
    return render(request, page, ctx, status=status)


@login_required
@require_GET
def workbench(request: WorkbenchRequest, slug: str) -> HttpResponse:
    project = _annotating_project(request, slug)
    assignment = services.queue_next(project=project, annotator=request.user)
    return _render_task(request, _task_context(request, project, assignment))


def _next_or_redirect(request: WorkbenchRequest, project: Project, flash: str) -> HttpResponse:
    """After a committed write: the next item. If claiming it fails (the database stayed busy past
    the retries), the answer still confirms what was stored and offers the next item as a link:
    saved work is never reported as a failure."""
    if not request.htmx:
        messages.success(request, flash)
        return redirect(reverse("workbench", args=[project.slug]), permanent=False)
    try:
        assignment = services.queue_next(project=project, annotator=request.user)
    except DatabaseError as exc:
        logger.warning("%s stored; claiming the next item failed: %s", flash, exc)
        stale = "The next item could not be fetched just now (the server is busy). Your answer is saved."
        ctx = _task_context(request, project, None, flash=flash, stale=stale)
        ctx["retry_next"] = True  # the page asks again by itself after 2 s (htmx), no key press needed
        return _render_task(request, ctx)
    return _render_task(request, _task_context(request, project, assignment, flash=flash))


@login_required
@require_POST
def workbench_submit(request: WorkbenchRequest, slug: str) -> HttpResponse:
    project = _annotating_project(request, slug)
    item_id = request.POST.get("item", "")
    if not _ITEM_ID.fullmatch(item_id):
        return HttpResponseBadRequest("The form names no item.")
    assignment = selectors.assignment_for_annotator(project=project, annotator=request.user, item_id=int(item_id))
    if assignment is None:
        current = services.queue_next(project=project, annotator=request.user)
        stale = "That item was not handed to you, so nothing was saved."
        return _render_task(request, _task_context(request, project, current, stale=stale), status=409)
    key = request.POST.get("idempotency_key", "")
    if assignment.item.kind == Item.Kind.EDIT_REVIEW:
        judgment, parse_errors = review.review_judgment_from_post(request.POST)
    else:
        judgment, parse_errors = judgment_from_post(request.POST, response_ids=list(assignment.shown_order),
                                                    mode=project.mode)
    try:
        if parse_errors:
            raise JudgmentInvalid(parse_errors)
        result = services.annotation_submit(
            project=project, annotator=request.user, item_id=assignment.item_id, judgment=judgment, idempotency_key=key,
            name_by_letter=True,
        )
    except JudgmentInvalid as exc:
        ctx = _task_context(request, project, assignment, data=request.POST, errors=exc.errors, key=key)
        return _render_task(request, ctx, status=422)
    except StaleAssignment as exc:
        ctx = _task_context(request, project, assignment, data=request.POST, stale=exc.message, key=key)
        return _render_task(request, ctx, status=409)
    verb = "was already saved" if result.replayed else "saved"
    place = selectors.item_place(assignment.item)
    return _next_or_redirect(request, project, f"{place} {verb} (record #{result.annotation.pk}).")


def _place_name(project: Project, item_id: int | str) -> str:
    """"Item 7" (the item's place in the project), as flashes name it."""
    place = selectors.item_place_by_id(project, int(item_id))
    return str(place) if place is not None else "The item"


@login_required
@require_POST
def workbench_skip(request: WorkbenchRequest, slug: str) -> HttpResponse:
    project = _annotating_project(request, slug)
    item_id = request.POST.get("item", "")
    action = request.POST.get("action", "skip")
    try:
        if not _ITEM_ID.fullmatch(item_id):
            raise WorkbenchError("No item given.")
        if action == "flag":
            services.assignment_flag(
                project=project, annotator=request.user, item_id=int(item_id),
                kind=request.POST.get("flag", ""), note=request.POST.get("note", ""),
            )
            flash = f"{_place_name(project, item_id)} flagged for the researchers; here is the next one."
        else:
            services.assignment_skip(
                project=project, annotator=request.user, item_id=int(item_id),
                reason=request.POST.get("reason", ""), note=request.POST.get("note", ""),
            )
            flash = f"{_place_name(project, item_id)} skipped."
    except StaleAssignment as exc:
        assignment = services.queue_next(project=project, annotator=request.user)
        return _render_task(request, _task_context(request, project, assignment, stale=exc.message), status=409)
    except WorkbenchError as exc:
        # A refused skip or flag (no reason, "other" without a note): the same item, the message beside
        # the form that was sent, what was typed in it kept, and the judgment typed so far too (the
        # page's skip and flag forms send it along: hx-include).
        assignment = services.queue_next(project=project, annotator=request.user)
        same_item = assignment is not None and str(assignment.item_id) == item_id and "idempotency_key" in request.POST
        ctx = _task_context(
            request, project, assignment, skip_error=exc.message, skip_action=action,
            data=request.POST if same_item else None, key=request.POST.get("idempotency_key", "") if same_item else "",
        )
        ctx.update(skip_reason=request.POST.get("reason", ""), skip_note=request.POST.get("note", ""))
        return _render_task(request, ctx, status=422)
    return _next_or_redirect(request, project, flash)


@login_required
@require_POST
def workbench_undo(request: WorkbenchRequest, slug: str) -> HttpResponse:
    project = _annotating_project(request, slug)
    try:
        assignment = services.annotation_undo_last(project=project, annotator=request.user)
    except WorkbenchError as exc:
        current = services.queue_next(project=project, annotator=request.user)
        return _render_task(request, _task_context(request, project, current, stale=exc.message), status=409)
    flash = f"Your submission for {_place_name(project, assignment.item_id).lower()} was withdrawn (kept on record); answer it again."
    if not request.htmx:
        messages.info(request, flash)
        return redirect(reverse("workbench", args=[project.slug]))
    return _render_task(request, _task_context(request, project, assignment, flash=flash))


# --- Adjudication ------------------------------------------------------------------------------------


@login_required
@require_GET
def adjudication_list(request: WorkbenchRequest, slug: str) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    rows = selectors.adjudication_queue(project)
    return render(request, "annotation/workbench/adjudication_list.html", {"project": project, "rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def adjudication_item(request: WorkbenchRequest, slug: str, item_id: int) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    detail = selectors.adjudication_detail(project, item_id)
    if detail is None:
        raise Http404("No such item.")
    data, errors, status = None, None, 200
    is_review = detail.item.kind == Item.Kind.EDIT_REVIEW
    if request.method == "POST":
        order = [r.pk for r in detail.responses]
        if is_review:
            judgment, parse_errors = review.review_judgment_from_post(request.POST)
        else:
            judgment, parse_errors = judgment_from_post(request.POST, response_ids=order, mode=project.mode)
        try:
            if parse_errors:
                raise JudgmentInvalid(parse_errors)
            ann = services.adjudication_record(
                project=project, adjudicator=request.user, item=detail.item, judgment=judgment, name_by_letter=True
            )
        except JudgmentInvalid as exc:
            data, errors, status = request.POST, exc.errors, 422
        else:
            messages.success(request, f"Decision recorded for {str(selectors.item_place(detail.item)).lower()} (record #{ann.pk}).")
            return redirect(reverse("adjudication-item", args=[project.slug, detail.item.pk]))
    if is_review:
        under = review.edit_under_review(detail.item)
        outcome = edit_review_outcomes(project, review_item_ids=[detail.item.pk]).get(under.edit.pk)
        return render(request, "annotation/workbench/adjudication_review.html", {
            "project": project, "item": detail.item, "detail": detail, "under": under, "outcome": outcome,
            "messages_": prompt_messages(detail.item.prompt), "rows": review.verdict_rows(detail.annotations),
            "review": review.review_state(under.edit, data, errors), "verdicts": review.VERDICTS,
            "confidence_choices": [1, 2, 3, 4, 5], "adjudicating": True,
        }, status=status)
    ctx = _judgment_form(project, detail.item, detail.responses, data=data, errors=errors)
    names = {r.pk: f"{s.letter}" for r, s in zip(detail.responses, ctx["state"].responses)}
    ctx.update(detail=detail, records=selectors.annotation_rows(detail, names))
    return render(request, "annotation/workbench/adjudication_item.html", ctx, status=status)
