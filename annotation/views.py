"""Browser pages of the core app: dashboard, project page, import upload and import batch status.

Each view: parse/validate → authorize through ``annotation.roles`` (404 for non-members and, on
management pages, for annotators) → one service or selector → render. Login and logout are
Django's own views with our templates (see ``annotation/urls.py``).
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from annotation import roles, selectors
from annotation.forms import ImportForm, import_uploaded_file
from annotation.guidelines import guidelines_html
from annotation.importing import import_batches_reap
from annotation.models import ImportBatch

RECENT_IMPORTS = 10


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    projects = selectors.project_list_for_user(user=request.user)
    return render(
        request,
        "annotation/dashboard.html",
        {"projects": projects, "can_create_projects": roles.is_researcher(request.user)},
    )


@login_required
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = roles.get_project_for_member(request.user, slug)
    manage = roles.role_manages(role)
    context = {
        "project": project,
        "role": role,
        "can_manage": manage,
        "guidelines": guidelines_html(project.guidelines),
        "counts": selectors.project_counts(project=project),
        "imports": list(selectors.import_batch_list(project=project)[:RECENT_IMPORTS]) if manage else [],
    }
    return render(request, "annotation/project.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest, slug: str) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        batch = import_uploaded_file(
            project=project, upload=form.cleaned_data["file"], fmt=form.cleaned_data["format"], user=request.user,
            options=form.cleaned_data["options"],
        )
        return redirect("import-batch", slug=project.slug, pk=batch.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "annotation/import.html", {"project": project, "form": form}, status=status)


@login_required
@vary_on_headers("HX-Request")
def import_batch(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    batch = selectors.import_batch_get(project=project, pk=pk)
    if batch is None:
        raise Http404("No such import.")
    if batch.status == ImportBatch.Status.RUNNING and not batch.background and import_batches_reap(batch_ids=[pk]):
        batch.refresh_from_db()  # its process died: it is failed now, and the page stops polling
    running = batch.status in (ImportBatch.Status.PENDING, ImportBatch.Status.RUNNING)
    context = {"project": project, "batch": batch, "running": running}
    template = "annotation/import_batch.html"
    if getattr(request, "htmx", False):
        template += "#batch-status"  # the polled region alone
    return render(request, template, context)
