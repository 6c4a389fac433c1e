"""REST API for guards (DRF, one APIView per operation).

Researchers who are members of the project, and admins; annotators and non-members get 404
(``annotation.permissions.IsProjectResearcher``): annotators can neither train nor evaluate.
A project sees the guards of its taxonomy version.
"""
from __future__ import annotations

from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.permissions import IsProjectResearcher, ProjectRequest, TribunalAutoSchema
from exports.guard import selectors, services
from exports.guard.models import GuardModel
from exports.models import Export


class _TrainingOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    phase = serializers.CharField()
    step = serializers.IntegerField()
    steps_total = serializers.IntegerField()
    progress = serializers.FloatField()
    loss = serializers.FloatField(allow_null=True)
    val_metrics = serializers.JSONField()
    error = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class _EvaluationJobOut(serializers.Serializer):
    id = serializers.IntegerField()
    data_name = serializers.CharField(help_text='The name the report is stored under, e.g. "project:<slug>", "file:<name>".')
    status = serializers.CharField()
    phase = serializers.CharField()
    step = serializers.IntegerField(help_text="Examples scored so far.")
    steps_total = serializers.IntegerField(help_text="Examples to score (0 until the data is read).")
    progress = serializers.FloatField()
    error = serializers.CharField()
    created_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_created_by(self, job) -> str | None:
        return job.created_by.get_username() if job.created_by else None


class _EvaluateOut(_EvaluationJobOut):
    queued = serializers.BooleanField()
    stored_as = serializers.CharField(help_text="Where the report will be: metrics.evaluations[stored_as].")


class _EvaluateFileOut(_EvaluateOut):
    examples = serializers.IntegerField(help_text="Examples in the uploaded file (every line was checked).")


def _evaluation_out(job, **extra) -> dict:
    return {**_EvaluationJobOut(job).data, "queued": True, "stored_as": job.data_name, **extra}


class _GuardOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    taxonomy = serializers.SerializerMethodField()
    base = serializers.CharField()
    recipe = serializers.CharField()
    status = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class
    source_ref = serializers.CharField()
    data_sha256 = serializers.CharField()
    counts = serializers.JSONField()
    created_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    error = serializers.CharField()
    url = serializers.SerializerMethodField()

    def get_taxonomy(self, g: GuardModel) -> str:
        return f"{g.taxonomy_version.taxonomy.slug} v{g.taxonomy_version.version}"

    def get_created_by(self, g: GuardModel) -> str | None:
        return g.created_by.get_username() if g.created_by else None

    def get_url(self, g: GuardModel) -> str:
        return reverse("api-guard-detail", args=[self.context["slug"], g.pk])


class _VersionOut(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    recipe = serializers.CharField()
    validation = serializers.JSONField(help_text="The version's validation binary metrics (f1, auroc, ece, ...).")
    evaluations = serializers.ListField(child=serializers.CharField(), help_text="Names of its stored evaluations.")


class _GuardDetailOut(_GuardOut):
    metrics = serializers.JSONField(help_text='{"validation", "evaluations", and for a retrained version "comparison": '
                                              'the deltas against the version it retrains, per evaluation set}')
    path = serializers.CharField()
    training = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()

    def get_training(self, g: GuardModel) -> dict | None:
        training = getattr(g, "training", None)
        return _TrainingOut(training).data if training is not None else None

    @extend_schema_field(_VersionOut(many=True))
    def get_versions(self, g: GuardModel) -> list[dict]:
        """Every version of this guard's name under the same taxonomy version, newest first."""
        return [
            {"id": v.pk, "version": v.version, "status": v.status, "recipe": v.recipe,
             "validation": ((v.metrics or {}).get("validation") or {}).get("binary") or {},
             "evaluations": sorted((v.metrics or {}).get("evaluations") or {})}
            for v in selectors.guard_versions(name=g.name).filter(taxonomy_version_id=g.taxonomy_version_id)[:50]
        ]


def _guard(request: ProjectRequest, pk: int) -> GuardModel:
    guard = selectors.guard_model_get(pk=pk)
    if guard is None or guard.taxonomy_version_id != request.project.taxonomy_version_id:
        raise Http404("No such guard.")
    return guard


class GuardListApi(APIView):
    """Guards under the project's taxonomy version. GET lists them; POST starts a training on the
    ``gpu`` worker from the project's current consensus (``source: "consensus"``) or one of its
    finished guard-aegis exports (``source: "export:<id>"``). Bad options are a 400; nothing starts."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    class InputSerializer(serializers.Serializer):
        name = serializers.SlugField(max_length=100, default="guard")
        recipe = serializers.ChoiceField(choices=GuardModel.Recipe.choices, default="default")
        source = serializers.CharField(default="consensus")  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class
        needs_caution = serializers.ChoiceField(choices=["defensive", "permissive"], default="defensive")
        config = serializers.DictField(required=False, default=dict, help_text="More GuardTrainConfig options (epochs, seed, ...).")

    @extend_schema(responses=_GuardOut(many=True))
    def get(self, request: ProjectRequest, slug: str) -> Response:
        guards = selectors.guard_model_list(taxonomy_version=request.project.taxonomy_version)[:100]
        return Response(_GuardOut(guards, many=True, context={"slug": slug}).data)

    @extend_schema(request=InputSerializer, responses={201: _GuardDetailOut})
    def post(self, request: ProjectRequest, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        project = request.project
        export = None
        if d["source"] == "consensus":
            spec = {"kind": "project", "slug": project.slug, "needs_caution": d["needs_caution"]}
        else:
            _, _, ident = d["source"].partition("export:")
            export = Export.objects.filter(project=project, format="guard-aegis", status="done",
                                           pk=int(ident) if ident.isdigit() else -1).first()
            if export is None:
                raise ValidationError({"source": ["Use \"consensus\" or \"export:<id>\" of a finished guard-aegis export of this project."]})
            spec = {"kind": "export", "path": export.out_dir, "needs_caution": d["needs_caution"]}
        try:
            job = services.guard_training_request(
                name=d["name"], taxonomy_version=project.taxonomy_version, source_spec=spec,
                config={**d["config"], "recipe": d["recipe"]}, user=request.user, project=project, export=export,
            )
        except services.GuardError as exc:
            raise ValidationError({"config": [str(exc)]}) from None
        guard = selectors.guard_model_get(pk=job.guard_model_id)
        return Response(_GuardDetailOut(guard, context={"slug": slug}).data, status=status.HTTP_201_CREATED)


class GuardDetailApi(APIView):
    """One guard: status, training progress (phase, step, loss, validation metrics), metrics and
    stored evaluations, provenance."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(responses=_GuardDetailOut)
    def get(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        return Response(_GuardDetailOut(_guard(request, pk), context={"slug": slug}).data)


class GuardPromoteApi(APIView):
    """Promote a ready guard: the one guard of its taxonomy version that juries use by default."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(request=None, responses=_GuardDetailOut)
    def post(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        try:
            guard = services.guard_model_promote(guard_model=_guard(request, pk))
        except services.GuardError as exc:
            raise ValidationError({"status": [str(exc)]}) from None
        return Response(_GuardDetailOut(selectors.guard_model_get(pk=guard.pk), context={"slug": slug}).data)


class GuardEvaluateApi(APIView):
    """Evaluate a usable guard on the project's current consensus: an evaluation job on the ``gpu``
    worker (202 with the job; follow it under ``evaluation-jobs/``); the report appears under
    ``metrics.evaluations["project:<slug>"]``. A guard that is not usable, or one already being
    evaluated on the consensus, is a 400."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(request=None, responses={202: _EvaluateOut})
    def post(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        try:
            job = services.guard_evaluation_request(guard_model=_guard(request, pk), project=request.project,
                                                    user=request.user)
        except services.GuardError as exc:
            raise ValidationError({"status": [str(exc)]}) from None
        return Response(_evaluation_out(job), status=status.HTTP_202_ACCEPTED)


class GuardEvaluationJobsApi(APIView):
    """This guard's evaluation jobs, newest first (at most 100): status, phase, examples scored /
    total, error."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(responses=_EvaluationJobOut(many=True))
    def get(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        jobs = selectors.guard_evaluation_jobs(guard_model=_guard(request, pk))[:100]
        return Response(_EvaluationJobOut(jobs, many=True).data)


class GuardEvaluationJobCancelApi(APIView):
    """Cancel a pending or running evaluation job (it stops before its next chunk of examples and
    stores nothing). 200 with the job; 400 when it had already ended."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    @extend_schema(request=None, responses={200: _EvaluationJobOut})
    def post(self, request: ProjectRequest, slug: str, pk: int, job: int) -> Response:
        guard = _guard(request, pk)
        evaluation = selectors.guard_evaluation_job_get(guard_model=guard, pk=job)
        if evaluation is None:
            raise Http404("No such evaluation job.")
        if not services.guard_evaluation_cancel(evaluation=evaluation):
            raise ValidationError({"status": [f"The evaluation had already ended ({evaluation.status})."]})
        return Response(_EvaluationJobOut(selectors.guard_evaluation_job_get(guard_model=guard, pk=job)).data)


class GuardRetrainApi(APIView):
    """Train the next version of this guard's name from the project's current consensus with the
    same recipe and configuration (seed included; ``config`` overrides single options) on the
    ``gpu`` worker. Once it is ready both versions are evaluated on the same sets and the new one's
    ``metrics.comparison`` holds the deltas against this one. 201 with the new version."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]

    class InputSerializer(serializers.Serializer):
        config = serializers.DictField(required=False, default=dict, help_text="GuardTrainConfig options to change (epochs, seed, ...).")

    @extend_schema(request=InputSerializer, responses={201: _GuardDetailOut})
    def post(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = services.guard_retrain_request(guard_model=_guard(request, pk), user=request.user,
                                                 project=request.project, config=data.validated_data["config"])
        except services.GuardError as exc:
            raise ValidationError({"config": [str(exc)]}) from None
        guard = selectors.guard_model_get(pk=job.guard_model_id)
        return Response(_GuardDetailOut(guard, context={"slug": slug}).data, status=status.HTTP_201_CREATED)


class _EvaluationCellOut(serializers.Serializer):
    version = serializers.IntegerField(source="guard.version")
    guard = serializers.IntegerField(source="guard.pk")
    evaluated = serializers.BooleanField(source="has")
    error = serializers.CharField(allow_null=True)
    n = serializers.IntegerField(allow_null=True)
    f1 = serializers.FloatField(allow_null=True)
    auroc = serializers.FloatField(allow_null=True)
    f1_delta = serializers.FloatField(allow_null=True, help_text="Against the nearest older version evaluated on the same data.")
    auroc_delta = serializers.FloatField(allow_null=True)


class _EvaluationRowOut(serializers.Serializer):
    data = serializers.CharField(source="name")  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class
    cells = _EvaluationCellOut(many=True)


class _EvaluationsOut(serializers.Serializer):
    versions = serializers.SerializerMethodField()
    rows = _EvaluationRowOut(many=True)

    def get_versions(self, compare: dict) -> list[dict]:
        return [{"id": v.pk, "version": v.version, "status": v.status} for v in compare["versions"]]


class GuardEvaluationsApi(APIView):
    """Stored evaluations of this guard's versions side by side (GET: one row per data name, F1 and
    AUROC per version with the change against the previous version), and evaluating the guard on
    an uploaded labelled file (POST multipart ``file``, optional ``needs_caution``): the file is
    checked line by line at once (a bad one is a 400 naming the line, nothing kept), then evaluated
    as an evaluation job on the ``gpu`` worker (202 with the job); the report appears under
    ``metrics.evaluations["file:<file name>"]``."""

    schema = TribunalAutoSchema()
    permission_classes = [IsProjectResearcher]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True)
        needs_caution = serializers.ChoiceField(choices=["defensive", "permissive"], default="defensive")

    @extend_schema(responses=_EvaluationsOut)
    def get(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        return Response(_EvaluationsOut(selectors.guard_evaluations_compare(_guard(request, pk))).data)

    @extend_schema(request={"multipart/form-data": InputSerializer},
                   responses={202: _EvaluateFileOut,
                              400: OpenApiResponse(description="A bad file (the error names the line), or a guard that is not usable.")})
    def post(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job, count = services.guard_evaluation_upload_request(
                guard_model=_guard(request, pk), upload=data.validated_data["file"],
                needs_caution=data.validated_data["needs_caution"], user=request.user)
        except services.GuardError as exc:
            raise ValidationError({"file": [str(exc)]}) from None
        return Response(_evaluation_out(job, examples=count), status=status.HTTP_202_ACCEPTED)
