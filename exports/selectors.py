"""Reads for exports."""
from __future__ import annotations

from pathlib import Path

from django.db.models import QuerySet
from django.http import Http404

from annotation.models import Project
from exports.models import Export


def export_list(*, project: Project) -> QuerySet[Export]:
    return Export.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")


def export_get(*, project: Project, export_id: int) -> Export:
    """One export of this project; 404 for an export of another project."""
    export = Export.objects.filter(project=project, pk=export_id).select_related("created_by").first()
    if export is None:
        raise Http404("No such export.")
    return export


def export_files(export: Export) -> list[dict]:
    """The files of a finished export as listed in its manifest (name, bytes, sha256)."""
    if export.status != Export.Status.DONE or not export.manifest:
        return []
    files = [{"name": name, **meta} for name, meta in sorted(export.manifest.get("files", {}).items())]
    # manifest.json cannot list its own hash; it is downloadable all the same
    return [{"name": "manifest.json", "sha256": "", "bytes": None}, *files]


def export_file_path(export: Export, name: str) -> Path:
    """The path of one listed file of a finished export; 404 for anything not in the manifest
    (so a crafted name cannot reach outside the export folder)."""
    listed = name == "manifest.json" or name in (export.manifest or {}).get("files", {})
    if export.status != Export.Status.DONE or not listed:
        raise Http404("No such file.")
    path = Path(export.out_dir) / name
    if not path.is_file():
        raise Http404("The file is no longer on disk.")
    return path
