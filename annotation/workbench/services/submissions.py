"""Writes of the annotation workbench other than the queue: submit, undo, skip, flag, adjudicate.

Every public function is keyword-only and atomic. They lock in the order that
:mod:`annotation.workbench.services.queue` writes down: the annotator's own *assignment* row first,
the item only when a lapsed lease has to be re-claimed (or, for an adjudication, the item alone).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.dbretry import retry_on_lock
from annotation.models import Annotation, Assignment, Item, Project
from annotation.services import annotation_record, judgment_clean
from annotation.workbench.judgments import (
    CleanJudgment,
    Judgment,
    JudgmentInvalid,
    StaleAssignment,
    WorkbenchError,
)
from annotation.workbench.services.queue import lease_length, own_assignment, reclaim

ST = Assignment.Status


@dataclass(frozen=True)
class SubmitResult:
    annotation: Annotation
    # The lease the record answered. A replay looks it up again by item and annotator; nothing
    # ties a stored key to a lease row, so a replay may find none.
    assignment: Assignment | None
    replayed: bool  # True when the idempotency key matched an earlier submission: nothing new stored


# --- Submissions ------------------------------------------------------------------------------------


def validate_for_project(
    *, project: Project, judgment: Judgment, shown_order: list[int], source: str = Annotation.Source.HUMAN,
    name_by_letter: bool = False,
    review_of: int | None = None,
) -> CleanJudgment:
    """The judgment checked by the rules of ``source`` (annotation.services.judgment_clean, the one
    check every source goes through). ``name_by_letter``: errors name responses by their letter.
    ``review_of``: the item's edited response, for an ``edit_review`` item (its judgment is a verdict
    on the edit)."""
    return judgment_clean(
        project=project, judgment=judgment, shown_order=shown_order, source=source, name_by_letter=name_by_letter,
        review_of=review_of,
    )


def _replay(
    *, annotator, key: str, item_id: int, assignment: Assignment | None = None, project: Project | None = None,
    judgment: Judgment | None = None,
) -> SubmitResult | None:
    """The stored submission this key names, when the request is a repeat of it (a double click, a
    retried request): answered from the record, nothing stored. A key names ONE submission, so the
    same key for another item, for a submission the annotator withdrew, or with a different answer
    is refused (409) rather than silently answered with the old record."""
    if not key:
        return None
    earlier = Annotation.objects.filter(annotator=annotator, idempotency_key=key).first()
    if earlier is None:
        return None
    if earlier.item_id != item_id:
        raise WorkbenchError("This idempotency key was already used for another item.", code="key_reused")
    if Annotation.objects.filter(supersedes=earlier, retracted=True).exists():
        raise WorkbenchError(
            "This key named a submission you withdrew, so this answer was not saved. Send it again with a new "
            "key (the workbench page does that by itself).", code="key_withdrawn",
        )
    if judgment is not None and project is not None and not _same_answer(project, earlier, judgment):
        raise WorkbenchError(
            "This key was already used for a different answer to this item; nothing was saved. Use a new key "
            "for a new answer.", code="key_reused",
        )
    if assignment is None:
        assignment = Assignment.objects.filter(item_id=item_id, annotator=annotator).first()
    return SubmitResult(annotation=earlier, assignment=assignment, replayed=True)


def _same_answer(project: Project, earlier: Annotation, judgment: Judgment) -> bool:
    """Whether ``judgment`` says what the stored ``earlier`` says (compared after the same checks)."""
    review_of = Item.objects.filter(pk=earlier.item_id).values_list("review_of_id", flat=True).first()
    try:
        clean = validate_for_project(project=project, judgment=judgment, shown_order=list(earlier.shown_order or []),
                                     review_of=review_of)
    except JudgmentInvalid:
        return False
    if review_of is not None:
        stored_fix = earlier.edit_fix.text if earlier.edit_fix is not None else ""
        return (earlier.edit_verdict, stored_fix, earlier.rationale, earlier.confidence) == (
            clean.edit_verdict, clean.edit_fix_text, clean.rationale, clean.confidence
        )
    stored_labels = {rs.response_id: (rs.label, tuple(rs.categories)) for rs in earlier.response_safety.all()}
    given_labels = {rid: (rl.label, tuple(rl.categories)) for rid, rl in clean.response_labels.items()}
    stored = (earlier.ranking, earlier.pair_choice, earlier.pair_strength, earlier.prompt_label,
              list(earlier.prompt_categories), stored_labels, set(earlier.principles.values_list("pk", flat=True)),
              earlier.principles_conflicted, earlier.rationale, earlier.confidence)
    given = (clean.ranking, clean.pair_choice, clean.pair_strength, clean.prompt_label, list(clean.prompt_categories),
             given_labels, set(clean.principle_ids), clean.principles_conflicted, clean.rationale, clean.confidence)
    return stored == given


@retry_on_lock
def annotation_submit(
    *, project: Project, annotator, item_id: int, judgment: Judgment, idempotency_key: str = "",
    now: datetime | None = None, name_by_letter: bool = False,
) -> SubmitResult:
    """Store ``annotator``'s judgment of the item they were handed.

    - Idempotent: a repeated ``idempotency_key`` (double click, retried request) returns the first
      record and stores nothing.
    - Validated on the server (:func:`judgment_validate`) against the shown responses, the
      project's taxonomy version and principle set; raises ``JudgmentInvalid``.
    - A lease that ran out is still honoured while nobody else took the slot; when the item went to
      someone else, raises ``StaleAssignment`` and stores nothing.
    - Time on task is measured here: lease served → now. The shown order comes from the lease.
    - After an undo the new record supersedes the retraction, so the chain of corrections is kept.
    - ``name_by_letter``: errors name responses by the letter shown (the workbench page), not by id.
    """
    now = now or timezone.now()
    key = (idempotency_key or "").strip()[:64]
    try:
        return _submit(
            project=project, annotator=annotator, item_id=item_id, judgment=judgment, key=key, now=now,
            name_by_letter=name_by_letter,
        )
    except IntegrityError:
        # The whole attempt was rolled back. A twin of this request with the same key that
        # committed first is the usual cause: answer with its record.
        with transaction.atomic():
            replay = _replay(annotator=annotator, key=key, item_id=item_id, project=project, judgment=judgment)
        if replay is not None:
            return replay
        raise


@transaction.atomic
def _submit(
    *, project: Project, annotator, item_id: int, judgment: Judgment, key: str, now: datetime, name_by_letter: bool = False,
) -> SubmitResult:
    # The item comes in the same query (its kind decides the rules); only the assignment row is locked.
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("item")
        .filter(project=project, annotator=annotator, item_id=item_id)
        .first()
    )
    if assignment is None or assignment.status != ST.ACTIVE:
        # Checked under the row lock: a concurrent twin of this request may have just committed.
        replay = _replay(annotator=annotator, key=key, item_id=item_id, assignment=assignment, project=project,
                         judgment=judgment)
        if replay is not None:
            return replay
    # On an active lease the key can only have been stored before an undo, or for another item;
    # either way the unique (annotator, idempotency_key) index refuses the insert below and
    # annotation_submit answers from the stored record: one query less on every normal submit.
    if assignment is None:
        raise StaleAssignment("This item was not handed to you, so nothing was saved.", code="not_assigned")
    if assignment.status == ST.DONE:
        raise StaleAssignment(
            "You already submitted this item. Use undo to change your answer.", code="already_submitted"
        )
    if assignment.status in (ST.SKIPPED, ST.FLAGGED):
        raise StaleAssignment(f"You {assignment.status} this item, so this answer was not saved.", code="skipped")
    clean = validate_for_project(
        project=project, judgment=judgment, shown_order=list(assignment.shown_order), name_by_letter=name_by_letter,
        review_of=assignment.item.review_of_id,
    )
    if assignment.status in (ST.EXPIRED, ST.RELEASED) and not reclaim(assignment, project=project, now=now):
        raise StaleAssignment(
            "Your time on this item ran out and it went to another annotator. Nothing was saved; "
            "your answers are still in the form. Copy anything you want to keep, then take the next item.",
            code="reassigned",
        )
    previous = assignment.annotation
    supersedes = previous if previous is not None and previous.retracted else None
    duration_ms = max(0, int((now - assignment.served_at).total_seconds() * 1000))
    annotation = annotation_record(
        project=project, item_id=item_id, clean=clean, source=Annotation.Source.HUMAN, annotator=annotator,
        shown_order=list(assignment.shown_order), duration_ms=duration_ms, supersedes=supersedes,
        idempotency_key=key,
    )
    assignment.status, assignment.annotation, assignment.submitted_at = ST.DONE, annotation, now
    # The lease now bounds the undo window.
    assignment.expires_at = now + lease_length(project)
    assignment.save(update_fields=["status", "annotation", "submitted_at", "expires_at", "slot"])
    return SubmitResult(annotation=annotation, assignment=assignment, replayed=False)


@retry_on_lock
@transaction.atomic
def annotation_undo_last(*, project: Project, annotator, now: datetime | None = None) -> Assignment:
    """Withdraw ``annotator``'s last submission in ``project`` and hand that item back to them.

    Nothing is deleted: a new Annotation with ``retracted=True`` supersedes the withdrawn one, and
    the next submission for the item supersedes the retraction. Allowed within one lease period of
    submitting. The lease the annotator held meanwhile (the next item) is released to the pool.
    """
    now = now or timezone.now()
    last = (
        Assignment.objects.select_for_update()
        .filter(project=project, annotator=annotator, status=ST.DONE)
        .order_by("-submitted_at", "-pk")
        .first()
    )
    if last is None:
        raise WorkbenchError("There is no submission of yours to undo.", code="nothing_to_undo")
    if now > last.expires_at:
        raise WorkbenchError(
            "Your last submission is older than the lease time and can no longer be undone here.",
            code="undo_window_passed",
        )
    current = (
        Assignment.objects.select_for_update()
        .filter(project=project, annotator=annotator, status=ST.ACTIVE)
        .first()
    )
    if current is not None:
        current.status = ST.RELEASED
        current.save(update_fields=["status"])
    retraction = Annotation(
        project=project, item_id=last.item_id, source=Annotation.Source.HUMAN, annotator=annotator,
        supersedes=last.annotation, retracted=True, shown_order=list(last.shown_order),
    )
    retraction.save(force_insert=True)
    last.status, last.annotation, last.submitted_at = ST.ACTIVE, retraction, None
    last.served_at, last.expires_at = now, now + lease_length(project)
    last.save(update_fields=["status", "annotation", "submitted_at", "served_at", "expires_at"])
    return last


def _end_lease(*, project: Project, annotator, item_id: int, status: str, reason: str, note: str) -> Assignment:
    assignment = own_assignment(project=project, annotator=annotator, item_id=item_id)
    if assignment.status == ST.DONE:
        raise WorkbenchError("You already submitted this item; undo it first.", code="already_submitted")
    if assignment.status in (ST.SKIPPED, ST.FLAGGED):
        return assignment  # a repeated click: already recorded
    assignment.status, assignment.reason, assignment.note = status, reason, note.strip()[:2000]
    assignment.save(update_fields=["status", "reason", "note"])
    return assignment


@retry_on_lock
@transaction.atomic
def assignment_skip(*, project: Project, annotator, item_id: int, reason: str, note: str = "") -> Assignment:
    """Skip the item with a reason. Its slot goes back to the pool; this annotator will not get it again."""
    if reason not in Assignment.SkipReason.values:
        raise WorkbenchError(f"Choose a reason for skipping ({', '.join(Assignment.SkipReason.values)}).", code="invalid")
    if reason == Assignment.SkipReason.OTHER and not note.strip():
        raise WorkbenchError("Say why you skip when the reason is 'other'.", code="invalid")
    return _end_lease(project=project, annotator=annotator, item_id=item_id, status=ST.SKIPPED, reason=reason, note=note)


@retry_on_lock
@transaction.atomic
def assignment_flag(*, project: Project, annotator, item_id: int, kind: str, note: str = "") -> Assignment:
    """Flag the item as broken or harmful to view. Recorded for researchers (adjudication page);
    the slot goes back to the pool and this annotator will not get the item again."""
    if kind not in Assignment.Flag.values:
        raise WorkbenchError(f"Unknown flag {kind!r}; use {' or '.join(Assignment.Flag.values)}.", code="invalid")
    return _end_lease(project=project, annotator=annotator, item_id=item_id, status=ST.FLAGGED, reason=kind, note=note)


# --- Adjudication -----------------------------------------------------------------------------------


@retry_on_lock
@transaction.atomic
def adjudication_record(
    *, project: Project, adjudicator, item: Item, judgment: Judgment, name_by_letter: bool = False
) -> Annotation:
    """Record the final decision on ``item`` as a new ``Annotation(source="adjudication")``.

    A later decision supersedes the earlier one (the item row is locked so two adjudicators cannot
    both supersede the same record). Validated by the same rules as annotators' submissions, over
    the item's responses in source order.
    """
    if item.project_id != project.pk:
        raise WorkbenchError("That item is not in this project.", code="not_found")
    Item.objects.select_for_update().filter(pk=item.pk).first()
    order = list(item.responses.judged().order_by("position").values_list("pk", flat=True))
    clean = validate_for_project(
        project=project, judgment=judgment, shown_order=order, source=Annotation.Source.ADJUDICATION,
        name_by_letter=name_by_letter, review_of=item.review_of_id,
    )
    previous = (
        Annotation.objects.filter(item=item, source=Annotation.Source.ADJUDICATION).current()
        .order_by("-pk")
        .first()
    )
    return annotation_record(
        project=project, item_id=item.pk, clean=clean, source=Annotation.Source.ADJUDICATION,
        annotator=adjudicator, shown_order=order, duration_ms=None, supersedes=previous, idempotency_key="",
    )
