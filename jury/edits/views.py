"""Researcher pages of synthetic edits: the runs of a project (start one, edit the templates) and
a run's progress with every edit, kept or discarded with the reason.

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
from jury.edits import selectors, services
from jury.edits.forms import EditRunStartForm, TemplateReviseForm


@login_required
def run_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    status = 200
    form = EditRunStartForm()
    if request.method == "POST":
        form = EditRunStartForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                run = services.edit_run_start(
                    project=project, editor=form.cleaned_data["editor"], direction=form.cleaned_data["direction"],
                    template=form.cleaned_data.get("template"), options=form.options(), user=request.user,
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Edit run #{run.pk} started ({run.total} responses).")
                return redirect("edit-run", slug=project.slug, pk=run.pk)
    templates = [(t, TemplateReviseForm(initial={"template": t.pk, "text": t.text}, auto_id=f"t{t.pk}_%s"))
                 for t in services.templates_latest()]
    runs = list(selectors.run_list(project=project)[:50])
    return render(request, "jury/edits/runs.html",
                  {"project": project, "form": form, "runs": runs, "templates": templates}, status=status)


@login_required
@require_POST
def template_revise(request: HttpRequest, slug: str) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    form = TemplateReviseForm(request.POST)
    if form.is_valid():
        try:
            new = services.template_revise(template=form.cleaned_data["template"], text=form.cleaned_data["text"],
                                           notes=form.cleaned_data["notes"], user=request.user)
        except ValueError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Saved {new.label}; runs started from now on can use it.")
    else:
        messages.error(request, "The template could not be saved: " + "; ".join(
            f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items()))
    return redirect("edit-runs", slug=project.slug)


@login_required
@vary_on_headers("HX-Request")
def run_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    run = selectors.run_get(project=project, pk=pk)
    context = {"project": project, "run": run, "progress": selectors.run_progress(run=run), "active": run.is_active}
    if getattr(request, "htmx", False):
        return render(request, "jury/edits/run.html#run-progress", context)
    context["edits"] = list(selectors.run_edits(run=run)[:500])
    return render(request, "jury/edits/run.html", context)


@login_required
@require_POST
def run_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    run = selectors.run_get(project=project, pk=pk)
    try:
        services.edit_run_cancel(run=run)
        messages.success(request, f"Edit run #{run.pk} cancelled.")
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("edit-run", slug=project.slug, pk=run.pk)
