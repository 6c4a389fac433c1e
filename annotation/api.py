"""REST API of the core app (DRF). Interfaces only: parse → authorize (permission classes built on
``annotation.roles``) → one service or selector → serialize.

Who may call what is stated by each view's permission classes; ``TribunalAutoSchema`` copies their
descriptions into the OpenAPI schema (``/api/schema/``, browsable at ``/api/docs/``).

Annotators never receive other people's judgments: item payloads for annotators carry no
annotations, no annotation counts, no gold answers, no imported metadata (which may hold source
labels) and no model names (judging is blind).
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404, HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import roles, selectors, services
from annotation.auth import LoginRateThrottle, locked_out, lockout_response
from annotation.forms import import_uploaded_file, options_from_mapping_text
from annotation.importing import import_batches_reap
from annotation.metrics.services import DEFAULT_BOOT, MAX_BOOT, project_metrics_shown
from annotation.models import ImportBatch, Project
from annotation.permissions import (
    IsAuthenticatedUser,
    IsProjectMember,
    IsProjectResearcher,
    IsSiteResearcherForWrites,
    ProjectRequest,
    TribunalAutoSchema,
    can_see_judgments,
)


class TribunalApi(APIView):
    schema = TribunalAutoSchema()


class TribunalListApi(generics.ListAPIView):
    schema = TribunalAutoSchema()


# --- Auth ---------------------------------------------------------------------------------------


class TokenObtainApi(TribunalApi):
    """Exchange a username and password for a new API token; send it as `Authorization: Token <token>`.

    The token is shown once (only its hash is stored) and expires after `API_TOKEN_TTL_HOURS`
    (`expiry` in the answer); ask again for a new one. A password change revokes all of the
    user's tokens; `GET auth/tokens/` lists them, `DELETE auth/tokens/<id>/` revokes one,
    `POST auth/logout/` revokes the one in use. LOGIN_RATE attempts per address; after
    LOGIN_FAILURE_LIMIT failures an account or address is locked out (django-axes:
    429 `{"code": "locked_out"}`), see annotation/auth.py."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [LoginRateThrottle]

    class InputSerializer(AuthTokenSerializer):
        pass

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="Shown once; only its hash is kept.")
        id = serializers.CharField(help_text="The token's public id (its first characters), for listing and revoking.")
        expiry = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request) -> Response | HttpResponse:
        # A JSON body that is not an object names no user; the serializer below refuses it.
        username = str(request.data.get("username", ""))[:150] if isinstance(request.data, dict) else ""
        if locked_out(request, username):  # refused before any password is hashed
            return lockout_response(request._request)
        ser = self.InputSerializer(data=request.data, context={"request": request})
        if not ser.is_valid():
            if locked_out(request, username):  # this failure reached the limit
                return lockout_response(request._request)
            raise ValidationError(ser.errors)
        try:
            instance, token = services.api_token_issue(user=ser.validated_data["user"])
        except services.TokenLimitReached as exc:
            return Response({"code": "token_limit", "detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(self.OutputSerializer({"token": token, "id": instance.token_key, "expiry": instance.expiry}).data)


class TokenListApi(TribunalApi):
    """Your API tokens (never the tokens themselves: their public ids, when they were issued, when they expire)."""

    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField(source="token_key")
        created = serializers.DateTimeField()
        expiry = serializers.DateTimeField(allow_null=True)
        current = serializers.BooleanField(help_text="The token this request was made with.")

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        rows = selectors.api_tokens(user=request.user)
        in_use = getattr(request.auth, "token_key", None)
        for row in rows:
            row.current = row.token_key == in_use
        return Response(self.OutputSerializer(rows, many=True).data)


class TokenRevokeApi(TribunalApi):
    """Revoke one of your API tokens by its id."""

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, token_id: str) -> Response:
        if not services.api_token_revoke(user=request.user, token_key=token_id):
            return Response({"code": "not_found", "detail": "You have no token with that id."}, status=404)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenLogoutApi(TribunalApi):
    """Revoke the token this request is made with (`all=1`: every token of yours)."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        token_key = getattr(request.auth, "token_key", None)  # knox's AuthToken, None for a session
        if request.query_params.get("all", "").lower() in ("1", "true", "yes"):
            services.api_tokens_revoke_all(user=request.user)
        elif token_key:
            services.api_token_revoke(user=request.user, token_key=token_key)
        else:
            return Response({"code": "no_token", "detail": "This request was not made with a token."}, status=400)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Projects -----------------------------------------------------------------------------------


class _ProjectOut(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    mode = serializers.ChoiceField(choices=Project.Mode.choices)
    overlap = serializers.IntegerField()
    taxonomy = serializers.CharField(source="taxonomy_version.taxonomy.slug")
    taxonomy_version = serializers.IntegerField(source="taxonomy_version.version")
    principle_set = serializers.CharField(source="principle_set.slug", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class ProjectListApi(TribunalApi):
    """Projects: GET lists the projects the caller can see (all for admins, memberships otherwise)
    with the caller's role and item counts; POST creates a project (the creator becomes its
    researcher member)."""

    # One view for the two operations on /api/projects/ (REST puts list and create on one URL);
    # each method still has its own serializers and calls one selector or one service.

    permission_classes = [IsSiteResearcherForWrites]

    class InputSerializer(serializers.Serializer):
        slug = serializers.SlugField(max_length=64)
        name = serializers.CharField(max_length=200)
        taxonomy = serializers.CharField(max_length=64, help_text="Slug of the taxonomy, e.g. aegis-2.0.")
        taxonomy_version = serializers.IntegerField(
            required=False, min_value=1, help_text="Version number; default: the newest published version."
        )
        principle_set = serializers.CharField(max_length=64, required=False, allow_blank=True)
        mode = serializers.ChoiceField(choices=Project.Mode.choices, default=Project.Mode.RANKING_SAFETY)
        overlap = serializers.IntegerField(default=1, min_value=1, max_value=50)
        guidelines = serializers.CharField(required=False, allow_blank=True, default="")
        description = serializers.CharField(required=False, allow_blank=True, default="")

    class OutputSerializer(_ProjectOut):
        role = serializers.CharField(source="user_role", help_text="The caller's role in the project.")
        item_count = serializers.IntegerField()

    @extend_schema(operation_id="projects_list", responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        projects = selectors.project_list_for_user(user=request.user)
        return Response(self.OutputSerializer(projects, many=True).data)

    @extend_schema(operation_id="projects_create", request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self._validated(request)
        try:
            project = services.project_create(created_by=request.user, **data)
        except (ValueError, DjangoValidationError) as exc:
            raise ValidationError(_messages(exc)) from exc
        except IntegrityError as exc:  # a concurrent create with the same slug
            raise ValidationError({"slug": ["A project with this slug already exists."]}) from exc
        project.user_role = roles.project_role(request.user, project)
        project.item_count = 0
        return Response(self.OutputSerializer(project).data, status=status.HTTP_201_CREATED)

    def _validated(self, request: Request) -> dict:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        version = selectors.taxonomy_version_for_new_project(
            slug=data.pop("taxonomy"), number=data.pop("taxonomy_version", None)
        )
        if version is None:
            raise ValidationError({"taxonomy": ["No such taxonomy (or version)."]})
        data["taxonomy_version"] = version
        principle_slug = data.pop("principle_set", "")
        data["principle_set"] = None
        if principle_slug:
            data["principle_set"] = selectors.principle_set_get(slug=principle_slug)
            if data["principle_set"] is None:
                raise ValidationError({"principle_set": ["No such principle set."]})
        return data


def _messages(exc: Exception) -> dict | list:
    if isinstance(exc, DjangoValidationError):
        return exc.message_dict if hasattr(exc, "error_dict") else exc.messages
    return [str(exc)]


class ProjectDetailApi(TribunalApi):
    """One project with its counts. Researchers and admins also see annotation and import counts."""

    permission_classes = [IsProjectMember]

    class OutputSerializer(_ProjectOut):
        role = serializers.CharField(help_text="The caller's role in the project.")
        guidelines = serializers.CharField(help_text="Markdown (render it sanitised).")
        counts = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(operation_id="projects_retrieve", responses=OutputSerializer)
    def get(self, request: ProjectRequest, slug: str) -> Response:
        project, role = request.project, request.project_role
        counts = selectors.project_counts(project=project)
        project.role = role
        project.counts = {"items": counts.items, "responses": counts.responses}
        if can_see_judgments(role):
            project.counts.update(
                annotations=counts.annotations, human_annotations=counts.human_annotations, imports=counts.imports
            )
        return Response(self.OutputSerializer(project).data)


# --- Items --------------------------------------------------------------------------------------


class _ResponseMemberOut(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    text = serializers.CharField()


class _ResponseResearcherOut(_ResponseMemberOut):
    model_name = serializers.CharField()
    origin = serializers.CharField()
    parent = serializers.IntegerField(source="parent_id", allow_null=True)  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class
    metadata = serializers.JSONField()


class ItemMemberOut(serializers.Serializer):
    """What an annotator sees: the prompt and the responses, nothing about other judgments."""

    id = serializers.IntegerField()
    external_id = serializers.CharField()
    prompt = serializers.JSONField(help_text='[{"role": "user", "content": "..."}, ...]')
    responses = _ResponseMemberOut(many=True)


class ItemResearcherOut(ItemMemberOut):
    """What researchers and admins see: everything stored about the item."""

    responses = _ResponseResearcherOut(many=True)
    metadata = serializers.JSONField()
    priority = serializers.IntegerField()
    is_gold = serializers.BooleanField()
    gold_answer = serializers.JSONField(allow_null=True)
    import_batch = serializers.IntegerField(source="import_batch_id", allow_null=True)
    source_file = serializers.CharField()
    source_line = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class ItemResearcherListOut(ItemResearcherOut):
    annotation_count = serializers.IntegerField()


class _ResponseSafetyOut(serializers.Serializer):
    response = serializers.IntegerField(source="response_id")
    label = serializers.CharField()  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class
    categories = serializers.JSONField()


class _AnnotationOut(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField()  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class
    source_detail = serializers.CharField()
    annotator = serializers.CharField(source="annotator.username", allow_null=True, default=None)
    ranking = serializers.JSONField(allow_null=True)
    pair_a = serializers.IntegerField(source="pair_a_id", allow_null=True)
    pair_b = serializers.IntegerField(source="pair_b_id", allow_null=True)
    pair_choice = serializers.CharField()
    pair_strength = serializers.IntegerField(allow_null=True)
    prompt_label = serializers.CharField()
    prompt_categories = serializers.JSONField()
    response_safety = _ResponseSafetyOut(many=True)
    principles = serializers.SerializerMethodField()
    principles_conflicted = serializers.BooleanField()
    rationale = serializers.CharField()
    confidence = serializers.IntegerField(allow_null=True)
    taxonomy_version = serializers.SerializerMethodField()
    supersedes = serializers.IntegerField(source="supersedes_id", allow_null=True)
    created_at = serializers.DateTimeField()

    def get_principles(self, obj) -> list[str]:
        return [p.code for p in obj.principles.all()]

    def get_taxonomy_version(self, obj) -> str | None:
        tv = obj.taxonomy_version
        return f"{tv.taxonomy.slug} v{tv.version}" if tv else None


class ItemResearcherDetailOut(ItemResearcherOut):
    annotations = _AnnotationOut(many=True)


ITEM_LIST_SCHEMA = PolymorphicProxySerializer(
    component_name="ItemListEntry",
    serializers=[ItemMemberOut, ItemResearcherListOut],
    resource_type_field_name=None,
)
ITEM_DETAIL_SCHEMA = PolymorphicProxySerializer(
    component_name="ItemDetail",
    serializers=[ItemMemberOut, ItemResearcherDetailOut],
    resource_type_field_name=None,
)


class ItemListApi(TribunalListApi):
    """Items of a project with their responses, paginated (`limit`, `offset`), in queue order.
    Annotators get prompts and responses only (`ItemMemberOut`); researchers and admins also get
    metadata, gold answers, model names and annotation counts (`ItemResearcherListOut`)."""

    permission_classes = [IsProjectMember]

    def get_queryset(self):
        return selectors.item_list(
            project=self.request.project, with_annotation_counts=can_see_judgments(self.request.project_role)
        )

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False):
            return ItemMemberOut
        return ItemResearcherListOut if can_see_judgments(self.request.project_role) else ItemMemberOut

    @extend_schema(operation_id="project_items_list", responses=ITEM_LIST_SCHEMA)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ItemDetailApi(TribunalApi):
    """One item. Researchers and admins also get every annotation of it (human, imported, jury);
    annotators get the prompt and responses only."""

    permission_classes = [IsProjectMember]

    @extend_schema(operation_id="project_items_retrieve", responses=ITEM_DETAIL_SCHEMA)
    def get(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        full = can_see_judgments(request.project_role)
        item = selectors.item_get(project=request.project, pk=pk, with_annotations=full)
        if item is None:
            raise Http404("No such item.")
        serializer = ItemResearcherDetailOut if full else ItemMemberOut
        return Response(serializer(item).data)


# --- Taxonomies and principles ------------------------------------------------------------------


class _CategoryOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    group = serializers.CharField()
    aliases = serializers.JSONField()
    order = serializers.IntegerField()


class _VersionSummaryOut(serializers.Serializer):
    version = serializers.IntegerField()
    status = serializers.CharField()
    published_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()

    def get_url(self, obj) -> str:
        return reverse("api-taxonomy-version", kwargs={"slug": obj.taxonomy.slug, "number": obj.version})


class TaxonomyListApi(TribunalListApi):
    """Safety taxonomies and their versions (read-only here; admins edit them in Django admin)."""

    permission_classes = [IsAuthenticatedUser]
    pagination_class = None

    class OutputSerializer(serializers.Serializer):
        slug = serializers.SlugField()
        name = serializers.CharField()
        description = serializers.CharField()
        source = serializers.CharField()  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class
        versions = _VersionSummaryOut(many=True)

    serializer_class = OutputSerializer

    def get_queryset(self):
        return selectors.taxonomy_list()

    @extend_schema(operation_id="taxonomies_list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class TaxonomyVersionDetailApi(TribunalApi):
    """One taxonomy version with its hazard categories. Published versions never change."""

    permission_classes = [IsAuthenticatedUser]

    class OutputSerializer(serializers.Serializer):
        taxonomy = serializers.CharField(source="taxonomy.slug")
        name = serializers.CharField(source="taxonomy.name")
        version = serializers.IntegerField()
        status = serializers.CharField()
        notes = serializers.CharField()
        published_at = serializers.DateTimeField(allow_null=True)
        categories = _CategoryOut(many=True)

    @extend_schema(operation_id="taxonomy_versions_retrieve", responses=OutputSerializer)
    def get(self, request: Request, slug: str, number: int) -> Response:
        version = selectors.taxonomy_version_get(slug=slug, number=number)
        if version is None:
            raise Http404("No such taxonomy version.")
        return Response(self.OutputSerializer(version).data)


class PrincipleSetListApi(TribunalListApi):
    """Principle sets with their principles (cited by annotators and jurors)."""

    permission_classes = [IsAuthenticatedUser]
    pagination_class = None

    class OutputSerializer(serializers.Serializer):
        class _PrincipleOut(serializers.Serializer):
            code = serializers.CharField()
            short = serializers.CharField()
            text = serializers.CharField()
            group = serializers.CharField()
            order = serializers.IntegerField()

        slug = serializers.SlugField()
        name = serializers.CharField()
        description = serializers.CharField()
        principles = _PrincipleOut(many=True)

    serializer_class = OutputSerializer

    def get_queryset(self):
        return selectors.principle_set_list()

    @extend_schema(operation_id="principle_sets_list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# --- Imports ------------------------------------------------------------------------------------


class _BatchOut(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.slug")
    source_name = serializers.CharField()
    requested_format = serializers.CharField()
    detected_format = serializers.CharField()
    status = serializers.ChoiceField(choices=ImportBatch.Status.choices)
    background = serializers.BooleanField()
    size_bytes = serializers.IntegerField()
    bytes_read = serializers.IntegerField()
    progress = serializers.FloatField(help_text="0..1")
    records_read = serializers.IntegerField()
    items_created = serializers.IntegerField()
    items_skipped = serializers.IntegerField()
    skipped_detail = serializers.JSONField(help_text="duplicates_in_file, already_in_project, ignored")
    responses_created = serializers.IntegerField()
    annotations_created = serializers.IntegerField()
    error_count = serializers.IntegerField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()

    def get_url(self, obj) -> str:
        return reverse("api-import-detail", kwargs={"slug": obj.project.slug, "pk": obj.pk})


class _ImportErrorOut(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()


class _BatchDetailOut(_BatchOut):
    errors = _ImportErrorOut(many=True)  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class


class ImportListApi(TribunalApi):
    """Imports of a project. GET lists them, newest first; POST uploads a file (multipart `file`,
    `format`, and `mapping` for a `csv-raters` CSV) and imports it. Small files are imported at
    once and come back `done` or `failed` (a failed import stores nothing and lists every error by
    line); big files come back `pending` and run on the worker: poll the batch's `url`."""

    permission_classes = [IsProjectResearcher]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True)
        format = serializers.ChoiceField(choices=ImportBatch.Format.choices, default=ImportBatch.Format.AUTO)
        mapping = serializers.CharField(
            required=False, allow_blank=True, trim_whitespace=False,
            help_text="JSON: the column mapping of a CSV with one label column per rater (format `csv-raters`).",
        )

        def validate(self, attrs):
            attrs["options"] = options_from_mapping_text(
                attrs.get("mapping", ""), attrs.get("format", ImportBatch.Format.AUTO), serializers.ValidationError
            )
            return attrs

    @extend_schema(operation_id="project_imports_list", responses=_BatchOut(many=True))
    def get(self, request: ProjectRequest, slug: str) -> Response:
        batches = selectors.import_batch_list(project=request.project)
        return Response(_BatchOut(batches, many=True).data)

    @extend_schema(
        operation_id="project_imports_create",
        request={"multipart/form-data": InputSerializer},
        responses={
            201: OpenApiResponse(
                _BatchDetailOut, description="The batch (check `status`: a failed import is a batch too)."
            ),
            400: OpenApiResponse(description="No file, an unknown format, or a bad column mapping."),
        },
    )
    def post(self, request: ProjectRequest, slug: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        batch = import_uploaded_file(
            project=request.project,
            upload=serializer.validated_data["file"],
            fmt=serializer.validated_data["format"],
            user=request.user,
            options=serializer.validated_data["options"],
        )
        body = _BatchDetailOut(batch).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


class ImportDetailApi(TribunalApi):
    """One import batch: status, progress, counts and the full error list by line."""

    permission_classes = [IsProjectResearcher]

    @extend_schema(operation_id="project_imports_retrieve", responses=_BatchDetailOut)
    def get(self, request: ProjectRequest, slug: str, pk: int) -> Response:
        batch = selectors.import_batch_get(project=request.project, pk=pk)
        if batch is None:
            raise Http404("No such import.")
        if batch.status == ImportBatch.Status.RUNNING and not batch.background and import_batches_reap(batch_ids=[pk]):
            batch.refresh_from_db()  # its process died: failed now, with what was stored
        return Response(_BatchDetailOut(batch).data)


# --- Metrics ------------------------------------------------------------------------------------


class ProjectMetricsApi(TribunalApi):
    """Agreement figures of the project (see the README, "Metrics"): safety labels of prompts and
    responses (Krippendorff's alpha, Fleiss' kappa, percent agreement, per category), Cohen's kappa
    for every pair of raters with their shared counts (people, imported raters, the jury, the
    adjudication and the consensus), rankings (Kendall's tau-b matrix, W, ordinal alpha), pairwise
    choices, and the per-annotator table. Each estimate is `{value, low, high, n_items}` with a
    bootstrap 95% interval; `null` where undefined. Cached until the next judgment (`cached`,
    `computed_at`). Above `METRICS_WORKER_THRESHOLD` annotations the worker computes them: the
    answer is the newest stored result (`on_worker`, `snapshot`), `recomputing` while a newer one
    is on its way, or `{"pending": true}` before the first."""

    permission_classes = [IsProjectResearcher]

    class QuerySerializer(serializers.Serializer):
        bootstrap = serializers.IntegerField(
            required=False, default=DEFAULT_BOOT, min_value=0, max_value=MAX_BOOT,
            help_text=f"Bootstrap resamples of the intervals (0 to {MAX_BOOT}).",
        )

    @extend_schema(
        operation_id="project_metrics_retrieve",
        parameters=[OpenApiParameter(
            "bootstrap", OpenApiTypes.INT, OpenApiParameter.QUERY,
            description=f"Bootstrap resamples of the intervals, 0 to {MAX_BOOT} (default {DEFAULT_BOOT}).",
        )],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The figures (see `python manage.py metrics --json`)."),
            400: OpenApiResponse(description="`bootstrap` out of range."),
        },
    )
    def get(self, request: ProjectRequest, slug: str) -> Response:
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(project_metrics_shown(request.project, n_boot=query.validated_data["bootstrap"]))
