"""The synthetic-edits API (issue 11): runs of a project (list, start, detail with edits, cancel)
and the editor templates. Researchers of the project and admins only (``IsProjectResearcher``)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.permissions import IsProjectResearcher, ProjectRequest, TribunalAutoSchema
from jury.edits import selectors, services
from jury.edits.models import Direction, EditTemplate
from jury.models import ModelSpec


class _TemplateOut(serializers.ModelSerializer):
    class Meta:
        model = EditTemplate
        fields = ["id", "name", "direction", "version", "text", "notes", "created_at"]


class _EditOut(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField(source="item_id")
    source_response = serializers.IntegerField(source="source_response_id")
    source_text = serializers.CharField(source="source_response.text")
    edited_response = serializers.IntegerField(source="edited_response_id", allow_null=True)
    edited_text = serializers.SerializerMethodField()
    review_item = serializers.IntegerField(source="review_item_id", allow_null=True)
    status = serializers.CharField()
    discard_reason = serializers.CharField()
    word_distance = serializers.FloatField(allow_null=True)
    parse_mode = serializers.CharField()
    operations = serializers.ListField(child=serializers.CharField())
    feedback = serializers.DictField(child=serializers.CharField())
    raw_output = serializers.CharField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_edited_text(self, edit) -> str | None:
        return edit.edited_response.text if edit.edited_response_id else None


class _EditRunOut(serializers.Serializer):
    id = serializers.IntegerField()
    direction = serializers.CharField()
    editor = serializers.CharField(source="editor.name")
    template = serializers.CharField(source="template.label")
    status = serializers.CharField()
    total = serializers.IntegerField()
    processed = serializers.IntegerField()
    kept = serializers.IntegerField(source="kept_count")
    discarded = serializers.IntegerField(source="discarded_count")
    failed = serializers.IntegerField(source="failed_count")
    progress = serializers.FloatField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class _EditRunDetailOut(_EditRunOut):
    options = serializers.SerializerMethodField()
    timings = serializers.DictField()
    error = serializers.CharField()
    edits = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DictField())
    def get_options(self, run) -> dict:
        return {k: v for k, v in run.options.items() if k != "response_ids"}

    @extend_schema_field(_EditOut(many=True))
    def get_edits(self, run) -> list[dict]:
        return list(_EditOut(selectors.run_edits(run=run)[:500], many=True).data)


class EditRunListApi(APIView):
    """Edit runs of a project. GET lists them; POST starts one on the worker (gpu queue):
    ``{"editor": MODEL_SPEC_NAME, "direction": "improve|corrupt", "template": ID?, "options": {...}}``
    with options ``feedback``, ``instruction``, ``max_extra_words``, ``min_ratio``, ``max_ratio``, ``seed``,
    ``batch_size``, ``limit``, ``item_ids``, ``max_new_tokens``, ``temperature``."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    class InputSerializer(serializers.Serializer):
        editor = serializers.SlugField()
        direction = serializers.ChoiceField(choices=Direction.choices)
        template = serializers.IntegerField(required=False)
        options = serializers.DictField(required=False)

    @extend_schema(responses=_EditRunOut(many=True))
    def get(self, request: ProjectRequest, slug: str) -> Response:
        return Response(_EditRunOut(selectors.run_list(project=request.project)[:100], many=True).data)

    @extend_schema(request=InputSerializer, responses={201: _EditRunDetailOut})
    def post(self, request: ProjectRequest, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        editor = ModelSpec.objects.filter(name=data.validated_data["editor"]).first()
        if editor is None:
            raise ValidationError({"editor": [f"No model spec named {data.validated_data['editor']!r}."]})
        template = None
        if "template" in data.validated_data:
            template = EditTemplate.objects.filter(pk=data.validated_data["template"]).first()
            if template is None:
                raise ValidationError({"template": ["No such template."]})
        try:
            run = services.edit_run_start(
                project=request.project, editor=editor, direction=data.validated_data["direction"],
                template=template, options=data.validated_data.get("options") or {}, user=request.user,
            )
        except (ValueError, TypeError) as exc:
            raise ValidationError({"detail": [str(exc)]}) from None
        return Response(_EditRunDetailOut(run).data, status=status.HTTP_201_CREATED)


class EditRunDetailApi(APIView):
    """One edit run with its edits (kept or discarded with the reason; at most 500)."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(responses=_EditRunDetailOut)
    def get(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        return Response(_EditRunDetailOut(selectors.run_get(project=request.project, pk=pk)).data)


class EditRunCancelApi(APIView):
    """Cancel a pending or running edit run (409 if it already finished)."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(request=None, responses=_EditRunDetailOut)
    def post(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        run = selectors.run_get(project=request.project, pk=pk)
        try:
            run = services.edit_run_cancel(run=run)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(_EditRunDetailOut(run).data)


class EditTemplateListApi(APIView):
    """Editor templates, newest version of each name. POST ``{"template": ID, "text": ..., "notes": ...}``
    stores the next version of that template's name."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    class InputSerializer(serializers.Serializer):
        template = serializers.IntegerField()
        text = serializers.CharField(max_length=20000)
        notes = serializers.CharField(required=False, allow_blank=True, max_length=500)

    @extend_schema(responses=_TemplateOut(many=True))
    def get(self, request: ProjectRequest, slug: str) -> Response:
        return Response(_TemplateOut(services.templates_latest(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: _TemplateOut})
    def post(self, request: ProjectRequest, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = EditTemplate.objects.filter(pk=data.validated_data["template"]).first()
        if template is None:
            raise ValidationError({"template": ["No such template."]})
        try:
            new = services.template_revise(template=template, text=data.validated_data["text"],
                                           notes=data.validated_data.get("notes", ""), user=request.user)
        except ValueError as exc:
            raise ValidationError({"text": [str(exc)]}) from None
        return Response(_TemplateOut(new).data, status=status.HTTP_201_CREATED)
