"""Researcher pages of the jury: runs of a project (start one), a run's live progress, and an item
with every juror's verdict beside the human labels.

Access: researchers who are members of the project, and admins (``roles.get_project_for_researcher``);
everyone else gets 404. Model text is untrusted: templates only print it auto-escaped.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from annotation import roles
from jury import item_tables, selectors, services
from jury.forms import RunStartForm
from jury.services import finalize


@login_required
def run_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    if request.method == "POST":
        form = RunStartForm(request.POST)
        if form.is_valid():
            try:
                run = services.jury_run_start(
                    project=project, jury=form.cleaned_data["jury"], task=form.cleaned_data["task"],
                    user=request.user, chunk_size=form.cleaned_data.get("chunk_size"),
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Jury run #{run.pk} started.")
                return redirect("jury-run", slug=project.slug, pk=run.pk)
        status = 400
    else:
        form = RunStartForm()
        status = 200
    runs = list(selectors.run_list(project=project)[:50])
    return render(request, "jury/runs.html", {"project": project, "form": form, "runs": runs}, status=status)


@login_required
@vary_on_headers("HX-Request")
def run_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    run = selectors.run_get(project=project, pk=pk)
    context = {
        "project": project, "run": run, "progress": selectors.run_progress(run=run), "active": run.is_active,
    }
    if getattr(request, "htmx", False):
        return render(request, "jury/run.html#run-progress", context)
    rows = []  # (decision, its label in response letters, its reasons as the page names targets)
    for decision in selectors.run_decisions(run=run).prefetch_related("item__responses")[:200]:
        responses = list(decision.item.responses.all())
        ids = [r.pk for r in sorted(responses, key=lambda r: r.position)]
        rows.append((
            decision,
            item_tables.decision_label_text(decision, item_tables.letters_of(responses)),
            [finalize.readable_reason(reason, ids) for reason in decision.reasons or []],
        ))
    context["decisions"] = rows
    return render(request, "jury/run.html", context)


@login_required
@require_POST
def run_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    run = selectors.run_get(project=project, pk=pk)
    try:
        services.jury_run_cancel(run=run)
        messages.success(request, f"Jury run #{run.pk} cancelled.")
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("jury-run", slug=project.slug, pk=run.pk)


@login_required
def item_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    item = selectors.item_get(project=project, pk=pk)
    responses = sorted(item.responses.all(), key=lambda r: r.position)
    verdicts = list(selectors.item_verdicts(item=item))
    annotations = list(selectors.item_current_labels(item=item))
    letters = item_tables.letters_of(responses)
    response_ids = [r.pk for r in responses]
    decisions = [
        {
            "decision": d, "label": item_tables.decision_label_text(d, letters),
            "reasons": [finalize.readable_reason(reason, response_ids) for reason in d.reasons or []],
        }
        for d in selectors.item_decisions(item=item)
    ]
    context = {
        "project": project, "item": item,
        "responses": [(letters[r.pk], r) for r in responses],
        "tables": item_tables.safety_tables(responses=responses, annotations=annotations, verdicts=verdicts),
        "preferences": item_tables.preference_rows(responses=responses, annotations=annotations, verdicts=verdicts),
        "decisions": decisions,
    }
    return render(request, "jury/item.html", context)
