"""Workbench API (DRF), one APIView per operation, mounted under ``/api/annotate/<slug>/``.

Interfaces only: parse (InputSerializer) → authorise (``annotation.roles``; non-members get 404)
→ one service → serialise (OutputSerializer). Blind: payloads carry the item and its responses in
the annotator's shown order, never other people's judgments, model names, gold answers or
metadata; the jury's suggestion only when the project turned it on, marked with its source. An
edit review item (``kind`` edit_review) carries ``edit``: the original and the edit with what drove
it (direction, feedback, editor, template), which the reviewer needs to judge it (issue 11).
"""
from __future__ import annotations

import logging

from django.db import DatabaseError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import roles
from annotation.judgments import MAX_CATEGORIES, MAX_PRINCIPLES, MAX_RESPONSES
from annotation.models import Project
from annotation.prompts import prompt_messages
from annotation.workbench import selectors, services
from annotation.workbench.judgments import (
    Judgment,
    JudgmentInvalid,
    ResponseLabel,
    StaleAssignment,
    WorkbenchError,
)
from annotation.workbench.review import edit_under_review

log = logging.getLogger(__name__)


def _error(exc: WorkbenchError) -> Response:
    if isinstance(exc, JudgmentInvalid):
        return Response({"code": exc.code, "detail": exc.message, "errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
    code = status.HTTP_409_CONFLICT if isinstance(exc, StaleAssignment) or exc.code in (
        "undo_window_passed", "nothing_to_undo", "already_submitted", "key_reused", "key_withdrawn"
    ) else status.HTTP_400_BAD_REQUEST
    return Response({"code": exc.code, "detail": exc.message}, status=code)


class ResponseLabelSerializer(serializers.Serializer):
    response = serializers.IntegerField()
    label = serializers.CharField(max_length=16)  # type: ignore[assignment]  # API field named like a (Serializer) Field attribute; DRF's metaclass pops declared fields off the class
    categories = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, default=list, max_length=MAX_CATEGORIES
    )


class JudgmentSerializer(serializers.Serializer):
    ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(), max_length=MAX_RESPONSES),
        required=False, allow_null=True, max_length=MAX_RESPONSES,
        help_text="Tie groups of response ids, best first: [[12], [14, 15], [13]].",
    )
    pair_choice = serializers.ChoiceField(choices=["a", "b", "tie"], required=False, allow_blank=True, default="")
    pair_strength = serializers.IntegerField(required=False, allow_null=True, default=None)
    prompt_label = serializers.CharField(required=False, allow_blank=True, default="", max_length=16)
    prompt_categories = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, default=list, max_length=MAX_CATEGORIES
    )
    response_safety = ResponseLabelSerializer(many=True, required=False, default=list)  # bounded in to_internal_value
    principles = serializers.ListField(
        child=serializers.IntegerField(), required=False, default=list, max_length=MAX_PRINCIPLES
    )
    principles_conflicted = serializers.BooleanField(required=False, default=False)
    rationale = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    confidence = serializers.IntegerField(required=False, allow_null=True, default=None)
    edit_verdict = serializers.ChoiceField(
        choices=["accept", "reject", "fix"], required=False, allow_blank=True, default="",
        help_text="Edit review items (kind edit_review) only: the verdict on the edit.",
    )
    edit_fix = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=100_000, trim_whitespace=False,
        help_text="With edit_verdict fix: the fixed text.",
    )

    def to_internal_value(self, data):
        # Refuse an oversized body by its size before any field converts its thousands of entries.
        if isinstance(data, dict):
            for name, limit in (("ranking", MAX_RESPONSES), ("response_safety", MAX_RESPONSES),
                                ("prompt_categories", MAX_CATEGORIES), ("principles", MAX_PRINCIPLES)):
                value = data.get(name)
                if isinstance(value, list) and len(value) > limit:
                    raise serializers.ValidationError({name: [f"At most {limit} entries."]}, code="too_long")
            ranking = data.get("ranking")
            if isinstance(ranking, list):
                total = sum(len(g) if isinstance(g, list) else 1 for g in ranking)
                if total > MAX_RESPONSES:
                    raise serializers.ValidationError(
                        {"ranking": [f"A ranking names at most {MAX_RESPONSES} responses."]}, code="too_long"
                    )
        return super().to_internal_value(data)

    def to_judgment(self) -> Judgment:
        d = self.validated_data
        labels = {}
        for rl in d["response_safety"]:
            if rl["response"] in labels:
                raise JudgmentInvalid({"response_safety": [f"Response {rl['response']} is labelled twice."]})
            labels[rl["response"]] = ResponseLabel(label=rl["label"], categories=tuple(rl["categories"]))
        return Judgment(
            ranking=d.get("ranking"), pair_choice=d["pair_choice"], pair_strength=d["pair_strength"],
            prompt_label=d["prompt_label"], prompt_categories=tuple(d["prompt_categories"]), response_labels=labels,
            principles=tuple(d["principles"]), principles_conflicted=d["principles_conflicted"],
            rationale=d["rationale"], confidence=d["confidence"], edit_verdict=d["edit_verdict"],
            edit_fix=d["edit_fix"],
        )


def _member_project(request: Request, slug: str) -> Project:
    return roles.get_project_for_member(request.user, slug)[0]


class NextItemSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    item = serializers.IntegerField()
    mode = serializers.CharField()
    prompt = serializers.ListField(child=serializers.DictField())
    responses = serializers.ListField(child=serializers.DictField(), help_text="In your shown order.")
    lease_expires_at = serializers.DateTimeField()
    jury_suggestion = serializers.DictField(allow_null=True)
    kind = serializers.CharField(help_text="judge, or edit_review (answer with edit_verdict / edit_fix).")
    edit = serializers.DictField(
        allow_null=True, help_text="edit_review items: the original and the edit (id, text), direction, feedback, "
        "editor, template.",
    )


def _edit_payload(item) -> dict | None:
    if item.review_of_id is None:
        return None
    under = edit_under_review(item)
    return {
        "original": {"id": under.original.pk, "text": under.original.text},
        "edit": {"id": under.edit.pk, "text": under.edit.text},
        "direction": under.direction, "feedback": under.feedback, "editor": under.editor, "template": under.template,
    }


def _next_payload(project: Project, assignment) -> dict:
    """What an annotator is shown for their lease: the item, its responses in their order, and the
    jury's suggestion only when the project shows it."""
    suggestion = selectors.jury_suggestion(project, assignment.item_id)
    payload = {
        "assignment": assignment.pk,
        "item": assignment.item_id,
        "mode": project.mode,
        "prompt": prompt_messages(assignment.item.prompt),
        "responses": [{"id": r.pk, "text": r.text} for r in selectors.responses_in_order(assignment)],
        "lease_expires_at": assignment.expires_at,
        "kind": assignment.item.kind,
        "edit": _edit_payload(assignment.item),
        "jury_suggestion": (
            {
                "source": f"jury: {suggestion.source}", "ranking": suggestion.ranking,
                "pair_choice": suggestion.pair_choice, "pair_strength": suggestion.pair_strength,
                "prompt_label": suggestion.prompt_label,
                "response_safety": [
                    {"response": rid, "label": lab, "categories": cats}
                    for rid, (lab, cats) in suggestion.response_labels.items()
                ],
            }
            if suggestion
            else None
        ),
    }
    return NextItemSerializer(payload).data


class NextItemApi(APIView):
    """Lease the next item of the queue (or get back the one you hold). 204 when the queue is empty."""

    OutputSerializer = NextItemSerializer

    @extend_schema(request=None, responses={200: NextItemSerializer, 204: None})
    def post(self, request: Request, slug: str) -> Response:
        project = _member_project(request, slug)
        assignment = services.queue_next(project=project, annotator=request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_next_payload(project, assignment))


class AnnotationSubmitApi(APIView):
    """Submit your judgment of the item you hold. Repeat-safe with ``idempotency_key``.

    With ``?next=1`` a successful (or replayed) submit also leases your next item and returns it
    under ``next`` (null when the queue is empty), as ``POST next/`` would: one request per item.
    The submission is committed before the next item is claimed; on an error nothing is claimed.
    If the claim fails after the submission was stored, the answer is still the submission's
    success, with ``next: null`` and ``next_error`` (code ``next_unavailable``): never an error
    status for saved work.
    """

    class InputSerializer(JudgmentSerializer):
        item = serializers.IntegerField()
        idempotency_key = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)

    class OutputSerializer(serializers.Serializer):
        annotation = serializers.IntegerField()
        item = serializers.IntegerField()
        duration_ms = serializers.IntegerField()
        replayed = serializers.BooleanField()

    class OutputWithNextSerializer(OutputSerializer):
        next = NextItemSerializer(
            required=False, allow_null=True,
            help_text="Only with ?next=1: your next item (null when the queue is empty).",
        )
        next_error = serializers.DictField(
            required=False,
            help_text="Only when the submit was stored but the next item could not be claimed "
            "(code `next_unavailable`): ask `POST next/` for it.",
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputWithNextSerializer, 200: OutputWithNextSerializer},
        parameters=[
            OpenApiParameter(
                "next", OpenApiTypes.BOOL, OpenApiParameter.QUERY, required=False,
                description="Also lease and return your next item (field `next`).",
            )
        ],
    )
    def post(self, request: Request, slug: str) -> Response:
        project = _member_project(request, slug)
        ser = self.InputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            result = services.annotation_submit(
                project=project, annotator=request.user, item_id=ser.validated_data["item"],
                judgment=ser.to_judgment(), idempotency_key=ser.validated_data["idempotency_key"],
            )
        except WorkbenchError as exc:
            return _error(exc)
        out = {
            "annotation": result.annotation.pk, "item": result.annotation.item_id,
            "duration_ms": result.annotation.duration_ms, "replayed": result.replayed,
        }
        data = self.OutputSerializer(out).data
        if request.query_params.get("next", "").lower() in ("1", "true", "yes"):
            # The submission is committed: whatever happens to the claim, the answer is its success.
            try:
                assignment = services.queue_next(
                    project=project, annotator=request.user, after_submit=not result.replayed
                )
                data["next"] = _next_payload(project, assignment) if assignment is not None else None
            except DatabaseError as exc:
                log.warning("submit of item %s stored; claiming the next item failed: %s", result.annotation.item_id, exc)
                data["next"] = None
                data["next_error"] = {
                    "code": "next_unavailable",
                    "detail": "Your answer was saved. The next item could not be fetched just now: ask POST next/.",
                }
        return Response(data, status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED)


class AssignmentSkipApi(APIView):
    """Skip the item you hold, with a reason (``unsure``, ``language``, ``too_long``, ``other`` + note)."""

    class InputSerializer(serializers.Serializer):
        item = serializers.IntegerField()
        reason = serializers.CharField(max_length=32)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    @extend_schema(request=InputSerializer, responses={200: None})
    def post(self, request: Request, slug: str) -> Response:
        project = _member_project(request, slug)
        ser = self.InputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            d = ser.validated_data
            a = services.assignment_skip(
                project=project, annotator=request.user, item_id=d["item"], reason=d["reason"], note=d["note"]
            )
        except WorkbenchError as exc:
            return _error(exc)
        return Response({"item": a.item_id, "status": a.status, "reason": a.reason})


class AssignmentFlagApi(APIView):
    """Flag the item you hold as ``broken`` or ``harmful_to_view``."""

    class InputSerializer(serializers.Serializer):
        item = serializers.IntegerField()
        kind = serializers.CharField(max_length=32)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    @extend_schema(request=InputSerializer, responses={200: None})
    def post(self, request: Request, slug: str) -> Response:
        project = _member_project(request, slug)
        ser = self.InputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            d = ser.validated_data
            a = services.assignment_flag(
                project=project, annotator=request.user, item_id=d["item"], kind=d["kind"], note=d["note"]
            )
        except WorkbenchError as exc:
            return _error(exc)
        return Response({"item": a.item_id, "status": a.status, "reason": a.reason})


class AnnotationUndoApi(APIView):
    """Withdraw your last submission (within the lease time); the item is yours again."""

    @extend_schema(request=None, responses={200: None})
    def post(self, request: Request, slug: str) -> Response:
        project = _member_project(request, slug)
        try:
            a = services.annotation_undo_last(project=project, annotator=request.user)
        except WorkbenchError as exc:
            return _error(exc)
        return Response({"item": a.item_id, "retraction": a.annotation_id, "lease_expires_at": a.expires_at})


class AdjudicationListApi(APIView):
    """Researchers and admins: items ordered by disagreement (human vs human, human vs jury)."""

    @extend_schema(responses={200: None})
    def get(self, request: Request, slug: str) -> Response:
        project = roles.get_project_for_researcher(request.user, slug)
        rows = selectors.adjudication_queue(project)
        return Response(
            [
                {
                    "item": r.item.pk, "external_id": r.item.external_id, "human_annotations": r.humans,
                    "human_human": r.human_human, "human_jury": r.human_jury, "decided": r.decided, "flags": r.flags,
                }
                for r in rows
            ]
        )


class AdjudicationRecordApi(APIView):
    """Researchers and admins: record the final decision for an item (a new adjudication record)."""

    @extend_schema(request=JudgmentSerializer, responses={201: None})
    def post(self, request: Request, slug: str, item_id: int) -> Response:
        project = roles.get_project_for_researcher(request.user, slug)
        item = selectors.item_in_project(project=project, item_id=item_id)
        if item is None:
            return Response({"detail": "No such item."}, status=status.HTTP_404_NOT_FOUND)
        ser = JudgmentSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            ann = services.adjudication_record(project=project, adjudicator=request.user, item=item, judgment=ser.to_judgment())
        except WorkbenchError as exc:
            return _error(exc)
        return Response({"annotation": ann.pk, "item": item.pk, "supersedes": ann.supersedes_id}, status=status.HTTP_201_CREATED)



