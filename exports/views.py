"""Browser pages for exports: configure an export, watch its progress, download its files.

Researchers of the project and admins only; everyone else gets 404 (``annotation.roles``).
"""
from __future__ import annotations

import tempfile
import zipfile

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from annotation import roles
from exports import selectors, services
from exports.forms import ExportForm
from exports.options import ExportOptionsError

RECENT_EXPORTS = 20


@login_required
@require_http_methods(["GET", "POST"])
def export_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    status = 200
    if request.method == "POST":
        form = ExportForm(request.POST)
        if form.is_valid():
            try:
                export = services.export_request(project=project, user=request.user, options=form.options())
            except ExportOptionsError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("export-detail", slug=project.slug, pk=export.pk)
        status = 400
    else:
        form = ExportForm()
    context = {
        "project": project,
        "form": form,
        "exports": list(selectors.export_list(project=project)[:RECENT_EXPORTS]),
        "category_codes": list(project.taxonomy_version.categories.order_by("order").values_list("code", "name")),
    }
    return render(request, "exports/exports.html", context, status=status)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def export_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    export = selectors.export_get(project=project, export_id=pk)
    context = {
        "project": project,
        "export": export,
        "running": not export.is_finished,
        "files": selectors.export_files(export),
    }
    template = "exports/export_detail.html"
    if getattr(request, "htmx", False):
        template += "#export-status"  # the polled region alone
    return render(request, template, context)


@login_required
@require_GET
def export_download(request: HttpRequest, slug: str, pk: int, name: str) -> FileResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    export = selectors.export_get(project=project, export_id=pk)
    path = selectors.export_file_path(export, name)
    return FileResponse(open(path, "rb"), as_attachment=True, filename=f"export-{export.pk}-{name.replace('/', '-')}")


@login_required
@require_GET
def export_download_zip(request: HttpRequest, slug: str, pk: int) -> FileResponse:
    """The whole folder of a finished export (manifest, card, data files) as one zip, built in a
    temporary file that is deleted once sent. Only the files the manifest lists go in."""
    project = roles.get_project_for_researcher(request.user, slug)
    export = selectors.export_get(project=project, export_id=pk)
    paths = [(f["name"], selectors.export_file_path(export, f["name"])) for f in selectors.export_files(export)]
    if not paths:
        raise Http404("This export has no files (yet).")
    archive = tempfile.TemporaryFile()
    folder = f"export-{export.pk}-{export.format}"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, path in paths:
            zf.write(path, arcname=f"{folder}/{name}")
    archive.seek(0)
    return FileResponse(archive, as_attachment=True, filename=f"{folder}.zip", content_type="application/zip")
