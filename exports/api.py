"""REST API for exports (DRF): create and list, detail with progress, download.

Researchers who are members of the project, and admins; annotators and non-members get 404
(``annotation.permissions.IsProjectResearcher`` → ``roles.get_project_for_researcher``).
"""
from __future__ import annotations

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.permissions import IsProjectResearcher, ProjectRequest, TribunalAutoSchema
from exports import selectors, services
from exports.models import Export
from exports.options import FORMATS, ExportOptionsError


class _ExportOut(serializers.Serializer):
    id = serializers.IntegerField()
    format = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    items_total = serializers.IntegerField()
    items_done = serializers.IntegerField()
    rows_written = serializers.IntegerField()
    error = serializers.CharField()
    options = serializers.JSONField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()

    def get_url(self, export: Export) -> str:
        return reverse("api-export-detail", args=[export.project.slug, export.pk])

    def get_files(self, export: Export) -> list[dict]:
        return [
            {**f, "url": reverse("api-export-download", args=[export.project.slug, export.pk, f["name"]])}
            for f in selectors.export_files(export)
        ]


class _ExportDetailOut(_ExportOut):
    manifest = serializers.JSONField(allow_null=True)


class ExportListApi(APIView):
    """Exports of a project. GET lists them (newest first); POST starts one on the worker.

    POST body: ``{"format": "dpo|pro|kto|d2o|sft|guard-aegis|guard-llamaguard|edit-dpo|salt", ...options}``
    (see the dataset card of any export, or ``exports/options.py``, for every option). A bad option
    is a 400 with a message naming it; nothing is started."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=FORMATS)
        options = serializers.DictField(required=False, default=dict, help_text="Every option but format.")

    @extend_schema(responses=_ExportOut(many=True))
    def get(self, request: ProjectRequest, slug: str) -> Response:
        exports = selectors.export_list(project=request.project)[:100]
        for e in exports:
            e.project = request.project
        return Response(_ExportOut(exports, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: _ExportDetailOut})
    def post(self, request: ProjectRequest, slug: str) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"options": ["Send the options as a JSON object, e.g. {\"format\": \"dpo\"}."]})
        data = request.data
        raw = dict(data.get("options") or {}) if isinstance(data.get("options"), dict) else {}
        for key, value in data.items():
            if key != "options":
                raw[key] = value
        if not raw.get("format"):
            raise ValidationError({"format": [f"format is required: choose one of {', '.join(FORMATS)}."]})
        try:
            export = services.export_request(project=request.project, user=request.user, options=raw)
        except ExportOptionsError as exc:
            raise ValidationError({"options": [str(exc)]}) from None
        export.project = request.project
        return Response(_ExportDetailOut(export).data, status=status.HTTP_201_CREATED)


class ExportDetailApi(APIView):
    """One export: status, progress, files with download URLs, and the manifest once done."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(responses=_ExportDetailOut)
    def get(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        export = selectors.export_get(project=request.project, export_id=pk)
        export.project = request.project
        return Response(_ExportDetailOut(export).data)


class ExportDownloadApi(APIView):
    """Download one file of a finished export (a name listed in its ``files``)."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: ProjectRequest, slug: str, pk: int, name: str) -> FileResponse:
        export = selectors.export_get(project=request.project, export_id=pk)
        path = selectors.export_file_path(export, name)
        return FileResponse(open(path, "rb"), as_attachment=True, filename=f"export-{export.pk}-{name.replace('/', '-')}")
