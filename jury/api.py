"""REST API of the jury (DRF, one APIView per operation).

- ``/api/jury/jurors/``, ``/api/jury/juries/``: site researchers and admins read; admins create.
- ``/api/projects/<slug>/jury/runs/`` (list, create), ``.../runs/<id>/`` (detail),
  ``.../runs/<id>/cancel/`` (POST), ``.../items/<id>/verdicts/``: researchers who are members of
  the project, and admins; annotators and non-members get 404 (``annotation.roles``).
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import roles
from annotation.permissions import IsAuthenticatedUser, IsProjectResearcher, ProjectRequest, TribunalAutoSchema
from jury import selectors, services
from jury.models import Juror, Jury, ModelSpec, Task


class IsResearcherReadAdminWrite(IsAuthenticatedUser):
    description = "Site researchers and admins may read; only admins may create."

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if request.method in SAFE_METHODS:
            return roles.is_researcher(request.user)
        return roles.is_admin(request.user)


class _JurorOut(serializers.ModelSerializer):
    # The model's fields come from the juror's ModelSpec; the output keeps its flat shape.
    model_spec = serializers.CharField(source="model_spec.name", read_only=True)
    backend = serializers.CharField(source="model_spec.backend", read_only=True)
    model = serializers.CharField(source="model_spec.model", read_only=True)
    endpoint = serializers.CharField(source="model_spec.endpoint", read_only=True)
    use_chat_template = serializers.BooleanField(source="model_spec.use_chat_template", read_only=True)
    dtype = serializers.CharField(source="model_spec.dtype", read_only=True)
    device = serializers.CharField(source="model_spec.device", read_only=True)
    batch_size = serializers.IntegerField(source="model_spec.batch_size", read_only=True)
    max_length = serializers.IntegerField(source="model_spec.max_length", read_only=True)
    timeout_s = serializers.FloatField(source="model_spec.timeout_s", read_only=True)
    max_retries = serializers.IntegerField(source="model_spec.max_retries", read_only=True)

    class Meta:
        model = Juror
        fields = ["id", "name", "description", "model_spec", "backend", "model", "endpoint", "prompt_version",
                  "use_chat_template", "dtype", "device", "batch_size", "max_length", "timeout_s", "max_retries",
                  "enabled"]


class JurorListApi(APIView):
    """Jurors: a backend + a model + a prompt template version + device + batch size + max length."""

    schema = TribunalAutoSchema()
    permission_classes = [IsResearcherReadAdminWrite]

    class InputSerializer(serializers.Serializer):
        name = serializers.SlugField(max_length=100)
        backend = serializers.CharField(max_length=32, help_text="A registered backend kind (packaged | transformers | openai).")
        model = serializers.CharField(max_length=500)
        dtype = serializers.ChoiceField(choices=ModelSpec.Dtype.choices, required=False, default="auto")
        endpoint = serializers.URLField(required=False, allow_blank=True, default="")
        api_key_env = serializers.CharField(required=False, allow_blank=True, default="")
        prompt_version = serializers.CharField(required=False, default="v1")
        use_chat_template = serializers.BooleanField(required=False, default=True)
        device = serializers.CharField(required=False, allow_blank=True, default="")
        batch_size = serializers.IntegerField(required=False, default=8, min_value=1, max_value=1024)
        max_length = serializers.IntegerField(required=False, default=1024, min_value=64, max_value=131072)
        timeout_s = serializers.FloatField(required=False, default=60.0, min_value=0.1)
        max_retries = serializers.IntegerField(required=False, default=3, min_value=0, max_value=20)

    @extend_schema(responses=_JurorOut(many=True))
    def get(self, request: Request) -> Response:
        return Response(_JurorOut(selectors.juror_list(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: _JurorOut})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            juror = services.juror_create(**data.validated_data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict if hasattr(exc, "message_dict") else exc.messages) from None
        return Response(_JurorOut(juror).data, status=status.HTTP_201_CREATED)


class _JuryOut(serializers.ModelSerializer):
    members = serializers.SerializerMethodField()

    class Meta:
        model = Jury
        fields = ["id", "name", "description", "rule", "threshold", "caution_low", "caution_high", "category_threshold",
                  "min_confidence", "escalate_on_split", "escalation_priority", "chunk_size", "members"]

    def get_members(self, jury: Jury) -> list[dict]:
        return [{"juror": m.juror.name, "weight": m.weight} for m in jury.members.all()]


class JuryListApi(APIView):
    """Juries: a panel of jurors with weights and an aggregation rule with thresholds."""

    schema = TribunalAutoSchema()
    permission_classes = [IsResearcherReadAdminWrite]

    class InputSerializer(serializers.Serializer):
        class MemberSerializer(serializers.Serializer):
            juror = serializers.SlugField()
            weight = serializers.FloatField(default=1.0, min_value=0.0001)

        name = serializers.SlugField(max_length=100)
        rule = serializers.ChoiceField(choices=Jury.Rule.choices, default=Jury.Rule.MEAN)
        members = MemberSerializer(many=True)
        threshold = serializers.FloatField(required=False, min_value=0, max_value=1)
        caution_low = serializers.FloatField(required=False, min_value=0, max_value=1)
        caution_high = serializers.FloatField(required=False, min_value=0, max_value=1)
        min_confidence = serializers.FloatField(required=False, min_value=0, max_value=1)
        escalate_on_split = serializers.BooleanField(required=False)
        chunk_size = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(responses=_JuryOut(many=True))
    def get(self, request: Request) -> Response:
        return Response(_JuryOut(selectors.jury_list(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: _JuryOut})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        members = values.pop("members")
        jurors = []
        for m in members:
            juror = Juror.objects.filter(name=m["juror"]).first()
            if juror is None:
                raise ValidationError({"members": [f"No juror named {m['juror']!r}."]})
            jurors.append((juror, m["weight"]))
        try:
            jury = services.jury_create(jurors=jurors, **values)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict if hasattr(exc, "message_dict") else exc.messages) from None
        except ValueError as exc:
            raise ValidationError({"members": [str(exc)]}) from None
        return Response(_JuryOut(jury).data, status=status.HTTP_201_CREATED)


class _RunOut(serializers.Serializer):
    id = serializers.IntegerField()
    jury = serializers.CharField(source="jury.name")
    task = serializers.CharField()
    status = serializers.CharField()
    item_count = serializers.IntegerField()
    chunk_count = serializers.IntegerField()
    verdicts_expected = serializers.IntegerField()
    decisions_count = serializers.IntegerField()
    escalated_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class _RunDetailOut(_RunOut):
    verdicts_done = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    errors = serializers.JSONField()  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class
    timings = serializers.JSONField()
    config = serializers.SerializerMethodField()

    def _progress(self, run):
        if not hasattr(run, "_progress"):
            run._progress = selectors.run_progress(run=run)
        return run._progress

    def get_verdicts_done(self, run) -> int:
        return self._progress(run).done

    def get_progress(self, run) -> float:
        return round(self._progress(run).fraction, 4)

    def get_config(self, run) -> dict:
        cfg = dict(run.config)
        cfg["jurors"] = [{k: j[k] for k in ("name", "weight", "prompt_version")} for j in cfg.get("jurors", [])]
        cfg.pop("categories", None)
        cfg.pop("principles", None)
        return cfg


class RunListApi(APIView):
    """Jury runs of a project. GET lists them; POST ``{"jury": NAME, "task": "safety|preference|principles"}``
    starts one on the worker (gpu queue)."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    class InputSerializer(serializers.Serializer):
        jury = serializers.SlugField()
        task = serializers.ChoiceField(choices=Task.choices)
        chunk_size = serializers.IntegerField(required=False, min_value=1, max_value=10_000)
        include_edits = serializers.BooleanField(required=False, default=False,
                                                 help_text="Also judge synthetic edits (origin edited / human_edited).")

    @extend_schema(responses=_RunOut(many=True))
    def get(self, request: ProjectRequest, slug: str) -> Response:
        return Response(_RunOut(selectors.run_list(project=request.project)[:100], many=True).data)

    @extend_schema(request=InputSerializer, responses={201: _RunDetailOut})
    def post(self, request: ProjectRequest, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        jury = Jury.objects.filter(name=data.validated_data["jury"]).first()
        if jury is None:
            raise ValidationError({"jury": [f"No jury named {data.validated_data['jury']!r}."]})
        try:
            run = services.jury_run_start(project=request.project, jury=jury, task=data.validated_data["task"],
                                          user=request.user, chunk_size=data.validated_data.get("chunk_size"),
                                          include_edits=data.validated_data["include_edits"])
        except ValueError as exc:
            raise ValidationError({"detail": [str(exc)]}) from None
        return Response(_RunDetailOut(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(APIView):
    """One run: status, progress counted from stored verdicts, errors, timings."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(responses=_RunDetailOut)
    def get(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        return Response(_RunDetailOut(selectors.run_get(project=request.project, pk=pk)).data)


class RunCancelApi(APIView):
    """Cancel a pending or running run (409 if it already finished)."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(request=None, responses=_RunDetailOut)
    def post(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        run = selectors.run_get(project=request.project, pk=pk)
        try:
            run = services.jury_run_cancel(run=run)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(_RunDetailOut(run).data)


class _VerdictOut(serializers.Serializer):
    run = serializers.IntegerField(source="run_id")
    juror = serializers.CharField(source="juror.name")
    task = serializers.CharField()
    target = serializers.CharField()
    order = serializers.IntegerField()
    response = serializers.IntegerField(source="response_id", allow_null=True)
    response_b = serializers.IntegerField(source="response_b_id", allow_null=True)
    principle = serializers.CharField(source="principle.code", allow_null=True, default=None)
    label = serializers.CharField()  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class
    probs = serializers.JSONField()
    p_positive = serializers.FloatField(allow_null=True)
    category_probs = serializers.JSONField()
    position_consistent = serializers.BooleanField(allow_null=True)
    truncated = serializers.BooleanField()
    truncation = serializers.JSONField()
    prompt_version = serializers.CharField()


class _DecisionOut(serializers.Serializer):
    run = serializers.IntegerField(source="run_id")
    task = serializers.CharField()
    rule = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class
    confidence = serializers.FloatField()
    escalated = serializers.BooleanField()
    reasons = serializers.JSONField()
    details = serializers.JSONField()
    annotation = serializers.IntegerField(source="annotation_id", allow_null=True)


class _ItemVerdictsOut(serializers.Serializer):
    item = serializers.IntegerField()
    verdicts = _VerdictOut(many=True)
    decisions = _DecisionOut(many=True)


class ItemVerdictsApi(APIView):
    """Every juror's verdicts on one item, and the jury's decisions."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(responses=_ItemVerdictsOut)
    def get(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        item = selectors.item_get(project=request.project, pk=pk)
        return Response({
            "item": item.pk,
            "verdicts": _VerdictOut(selectors.item_verdicts(item=item), many=True).data,
            "decisions": _DecisionOut(selectors.item_decisions(item=item), many=True).data,
        })


