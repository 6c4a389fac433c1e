"""Writes of the annotation workbench: the queue, submissions, skips, flags, undo, adjudication.

Every function is keyword-only and atomic. The promises the queue makes are held by the database
(see :class:`annotation.models.Assignment`); the code below is written so that they are also met
without tripping over those constraints under concurrency:

Locking order (to stay deadlock-free):
- claiming locks the *item* row (``FOR UPDATE SKIP LOCKED``), then touches that item's assignment
  rows (expiring lapsed leases, inserting the new one);
- submitting, skipping, flagging and undoing lock the annotator's own *assignment* row first and
  lock the item only when a lapsed lease has to be re-claimed; a lease whose row is still ``active``
  keeps its slot even after its time ran out, because only a claimer holding the item lock turns
  it into ``expired``;
- the database trigger that keeps ``Item.filled`` (migration 0005) updates the item row whenever
  an assignment starts or stops holding a slot, so a skip or an undo also waits for the item lock
  after taking its assignment lock. To keep that one-way, whoever holds an item lock expires
  lapsed leases with ``SKIP LOCKED`` (:func:`_expire`) and never waits for an assignment row.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Subquery
from django.utils import timezone

from annotation.dbretry import retry_on_lock
from annotation.models import Annotation, Assignment, HazardCategory, Item, Principle, Project, ResponseSafety
from annotation.workbench import selectors
from annotation.workbench.judgments import (
    CleanJudgment,
    Judgment,
    StaleAssignment,
    WorkbenchError,
    annotation_fields,
    judgment_validate,
)

ST = Assignment.Status
# How many candidates one claim looks at before it gives up on a contended queue.
CLAIM_ATTEMPTS = 25


@dataclass(frozen=True)
class SubmitResult:
    annotation: Annotation
    assignment: Assignment
    replayed: bool  # True when the idempotency key matched an earlier submission: nothing new stored


# --- The queue --------------------------------------------------------------------------------------


def _lease(project: Project) -> timedelta:
    return timedelta(seconds=project.lease_seconds)


def _gold_due(project: Project, annotator) -> bool:
    """Deterministic gold mixing: the k-th gold item is served once floor(rate * served) reaches k."""
    if project.gold_rate <= 0:
        return False
    counts = Assignment.objects.filter(project=project, annotator=annotator).aggregate(
        n=Count("pk"), g=Count("pk", filter=Q(is_gold=True))
    )
    return counts["g"] < math.floor(project.gold_rate * (counts["n"] + 1) + 1e-9)


def _candidates(project: Project, annotator, *, gold: bool, now: datetime):
    """Items this annotator may be given, best first (jury priority, then import order).

    Open items are those whose trigger-kept ``filled`` count is below the overlap, plus the few
    items holding a lapsed lease (still counted as filled until a claimer expires it under the
    item lock; at most one active lease per annotator, found through the one-active-lease index).
    """
    # The items this annotator holds or held, as one uncorrelated subquery: PostgreSQL hashes it
    # once per claim whatever its statistics say (a correlated NOT EXISTS was planned as a scan
    # of all the annotator's rows per item when the table statistics were stale).
    mine = (
        Assignment.objects.filter(project=project, annotator=annotator)
        .exclude(status__in=[ST.EXPIRED, ST.RELEASED])
        .order_by()
        .values("item_id")
    )
    qs = Item.objects.filter(project=project, is_gold=gold).exclude(pk__in=Subquery(mine))
    if not gold:
        lapsed = Assignment.objects.filter(
            project=project, status=ST.ACTIVE, expires_at__lt=now, slot__isnull=False
        ).order_by().values("item_id")
        qs = qs.filter(Q(filled__lt=project.overlap) | Q(pk__in=Subquery(lapsed)))
    return qs.order_by("-priority", "id")


def _shuffled(ids: list[int], item_id: int, annotator) -> list[int]:
    ids = list(ids)
    # Seeded per (item, annotator): stable across reloads, different between annotators.
    random.Random(f"tribunal:{item_id}:{annotator.pk}").shuffle(ids)
    return ids


def _expire(pks: list[int], *, now: datetime) -> int:
    """Turn these lapsed leases into ``expired`` (caller holds their item's lock); returns how many.

    Rows locked right now are left alone: their owner is submitting, skipping or undoing, which
    may need the item lock we hold (the ``filled`` trigger takes it), so waiting here could
    deadlock. Such a lease simply keeps its slot for this claim.
    """
    lockable = list(
        Assignment.objects.select_for_update(skip_locked=True)
        .filter(pk__in=pks, status=ST.ACTIVE, expires_at__lt=now)
        .values_list("pk", flat=True)
    )
    if lockable:
        Assignment.objects.filter(pk__in=lockable).update(status=ST.EXPIRED)
    return len(lockable)


def _take(item: Item, project: Project, annotator, *, gold: bool, now: datetime) -> Assignment | None:
    """With the item row locked: re-check and hand the item to ``annotator``; None if no longer possible.

    One read of the item's assignment rows (a handful: at most ``overlap`` live ones plus lapsed,
    skipped and flagged ones) gives this annotator's own row, the lapsed leases and the used slots.
    Slots only become used under the item lock, which we hold, so that read can only overstate
    what is free if a lapsed lease is being submitted right now; the expiring UPDATE below waits
    for that row and re-checks it, and when it touched fewer rows than expected we read again.
    The partial unique index on live slots stays the last word either way.
    """
    rows = list(Assignment.objects.filter(item=item))
    mine = next((a for a in rows if a.annotator_id == annotator.pk), None)
    if mine is not None and mine.status not in (ST.EXPIRED, ST.RELEASED):
        return None
    slot = None
    if not gold:
        lapsed = [a.pk for a in rows if a.status == ST.ACTIVE and a.expires_at < now]
        if lapsed and _expire(lapsed, now=now) != len(lapsed):
            rows = list(Assignment.objects.filter(item=item))
        else:
            for a in rows:
                if a.pk in lapsed:
                    a.status = ST.EXPIRED
        used = {a.slot for a in rows if a.status in Assignment.LIVE and a.slot is not None}
        free = [s for s in range(project.overlap) if s not in used]
        if not free:
            return None
        slot = free[0]
    responses = list(item.responses.order_by("position"))
    if mine is None:
        mine = Assignment(
            project=project, item=item, annotator=annotator, is_gold=gold,
            shown_order=_shuffled([r.pk for r in responses], item.pk, annotator),
        )
    else:
        mine.item = item
    mine.status, mine.slot, mine.served_at, mine.expires_at = ST.ACTIVE, slot, now, now + _lease(project)
    mine.reason, mine.note = "", ""
    # A concurrent request of the same annotator may have taken a lease a moment ago (one active
    # lease per annotator): the IntegrityError rolls back this attempt and queue_next goes round again.
    if mine.pk is None:
        mine.save(force_insert=True)
    else:
        mine.save(update_fields=["status", "slot", "served_at", "expires_at", "reason", "note"])
    # The caller usually shows the item next: spare it a second read of the responses.
    selectors.remember_responses(mine, responses)
    return mine


def _claim(project: Project, annotator, *, gold: bool, now: datetime) -> Assignment | None:
    tried: list[int] = []
    # First pass: skip items another claimer holds right now, so 20 people do not queue on one row.
    for _ in range(CLAIM_ATTEMPTS):
        item = (
            _candidates(project, annotator, gold=gold, now=now)
            .exclude(pk__in=tried)
            .select_for_update(skip_locked=True)
            .first()
        )
        if item is None:
            break
        taken = _take(item, project, annotator, gold=gold, now=now)
        if taken is not None:
            return taken
        tried.append(item.pk)
    # Second pass: everything left was locked a moment ago. Wait for those locks instead of
    # reporting an empty queue that is not empty.
    for pk in _candidates(project, annotator, gold=gold, now=now).exclude(pk__in=tried).values_list("pk", flat=True)[
        :CLAIM_ATTEMPTS
    ]:
        item = Item.objects.select_for_update().get(pk=pk)
        taken = _take(item, project, annotator, gold=gold, now=now)
        if taken is not None:
            return taken
    return None


def _next_attempt(*, project: Project, annotator, now: datetime, look_for_current: bool = True) -> Assignment | None:
    current = None
    if look_for_current:
        current = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("item")
            .filter(project=project, annotator=annotator, status=ST.ACTIVE)
            .first()
        )
    if current is not None:
        if current.expires_at < now + _lease(project) / 2:
            current.expires_at = now + _lease(project)
            current.save(update_fields=["expires_at"])
        return current
    if _gold_due(project, annotator):
        taken = _claim(project, annotator, gold=True, now=now)
        if taken is not None:
            return taken
    return _claim(project, annotator, gold=False, now=now)


@retry_on_lock
def queue_next(
    *, project: Project, annotator, now: datetime | None = None, after_submit: bool = False
) -> Assignment | None:
    """The item ``annotator`` should work on now, as their active lease; None when the queue is empty.

    Returns the annotator's current lease if they hold one (a reload does not hand out a second
    item); its time is renewed. Otherwise claims a new item: gold first when the project's
    ``gold_rate`` says one is due, then the highest ``Item.priority`` (which the jury raises for
    items it disputed), then import order. Side effects: lapsed leases on the claimed item become
    ``expired``; one Assignment row is inserted or revived. Each attempt is one atomic block.

    ``after_submit=True`` (the caller has just stored a new submission of this annotator's lease)
    skips the look-up of a current lease and claims straight away. Should the annotator hold one
    after all, the one-active-lease constraint refuses the claim and the second attempt, which
    looks, returns that lease; so does an empty queue. The same answer, one query less in the
    usual case.
    """
    now = now or timezone.now()
    for attempt in range(2):
        try:
            with transaction.atomic():
                got = _next_attempt(
                    project=project, annotator=annotator, now=now, look_for_current=not (after_submit and attempt == 0)
                )
            if got is not None or not after_submit or attempt:
                return got
            # Nothing to claim: before saying so, look for a lease the annotator still holds.
        except IntegrityError:
            # Another request of this annotator took a lease between our check and our insert:
            # go round once more and return that one.
            continue
    return None


def _own_assignment(*, project: Project, annotator, item_id: int) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update()
        .filter(project=project, annotator=annotator, item_id=item_id)
        .first()
    )
    if assignment is None:
        raise StaleAssignment("This item was not handed to you, so nothing was saved.", code="not_assigned")
    return assignment


def _reclaim(assignment: Assignment, *, project: Project, now: datetime) -> bool:
    """A lapsed lease (expired or released) is taken back if a slot is still free."""
    if assignment.is_gold:
        return True
    Item.objects.select_for_update().filter(pk=assignment.item_id).first()
    lapsed = list(
        Assignment.objects.filter(item_id=assignment.item_id, status=ST.ACTIVE, expires_at__lt=now)
        .exclude(pk=assignment.pk)
        .values_list("pk", flat=True)
    )
    if lapsed:
        _expire(lapsed, now=now)
    used = set(
        Assignment.objects.filter(item_id=assignment.item_id, status__in=Assignment.LIVE, slot__isnull=False)
        .exclude(pk=assignment.pk)
        .values_list("slot", flat=True)
    )
    free = [s for s in range(project.overlap) if s not in used]
    if not free:
        return False
    assignment.slot = free[0]
    return True


# --- Submissions ------------------------------------------------------------------------------------


def _category_codes(project: Project, mentioned: set[str]) -> set[str]:
    """The codes among ``mentioned`` that exist in the project's taxonomy version (no query when none)."""
    if not mentioned:
        return set()
    return set(
        HazardCategory.objects.filter(version_id=project.taxonomy_version_id, code__in=mentioned).values_list(
            "code", flat=True
        )
    )


def _principle_ids(project: Project, mentioned: set[int]) -> set[int]:
    """The ids among ``mentioned`` that are principles of the project's set (no query when none)."""
    if project.principle_set_id is None or not mentioned:
        return set()
    return set(
        Principle.objects.filter(principle_set_id=project.principle_set_id, pk__in=mentioned).values_list(
            "pk", flat=True
        )
    )


def validate_for_project(*, project: Project, judgment: Judgment, shown_order: list[int]) -> CleanJudgment:
    # judgment_validate only ever asks whether the categories and principles the judgment names
    # are valid, so looking up just those is the same check as loading the whole taxonomy.
    codes = {str(c) for c in judgment.prompt_categories}
    for rl in judgment.response_labels.values():
        codes.update(str(c) for c in rl.categories)
    principle_ids: set[int] = set()
    for p in judgment.principles:
        try:
            principle_ids.add(int(p))
        except (TypeError, ValueError):
            pass
    return judgment_validate(
        project=project, judgment=judgment, shown_order=shown_order,
        category_codes=_category_codes(project, codes), principle_ids=_principle_ids(project, principle_ids),
    )


def _store(
    *, project: Project, item_id: int, clean: CleanJudgment, source: str, annotator, shown_order: list[int],
    duration_ms: int | None, supersedes: Annotation | None, idempotency_key: str,
) -> Annotation:
    annotation = Annotation(
        project=project, item_id=item_id, source=source, annotator=annotator, shown_order=shown_order,
        duration_ms=duration_ms, supersedes=supersedes, idempotency_key=idempotency_key,
        **annotation_fields(clean, project=project),
    )
    annotation.save(force_insert=True)
    if clean.response_labels:
        ResponseSafety.objects.bulk_create(
            [
                ResponseSafety(annotation=annotation, response_id=rid, label=rl.label, categories=list(rl.categories))
                for rid, rl in clean.response_labels.items()
            ]
        )
    if clean.principle_ids:
        through = Annotation.principles.through
        through.objects.bulk_create([through(annotation=annotation, principle_id=pid) for pid in clean.principle_ids])
    return annotation


def _replay(*, annotator, key: str, item_id: int, assignment: Assignment | None = None) -> SubmitResult | None:
    if not key:
        return None
    earlier = Annotation.objects.filter(annotator=annotator, idempotency_key=key).first()
    if earlier is None:
        return None
    if earlier.item_id != item_id:
        raise WorkbenchError("This idempotency key was already used for another item.", code="key_reused")
    if assignment is None:
        assignment = Assignment.objects.filter(item_id=item_id, annotator=annotator).first()
    return SubmitResult(annotation=earlier, assignment=assignment, replayed=True)


@retry_on_lock
def annotation_submit(
    *, project: Project, annotator, item_id: int, judgment: Judgment, idempotency_key: str = "",
    now: datetime | None = None,
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
    """
    now = now or timezone.now()
    key = (idempotency_key or "").strip()[:64]
    try:
        return _submit(project=project, annotator=annotator, item_id=item_id, judgment=judgment, key=key, now=now)
    except IntegrityError:
        # The whole attempt was rolled back. A twin of this request with the same key that
        # committed first is the usual cause: answer with its record.
        with transaction.atomic():
            replay = _replay(annotator=annotator, key=key, item_id=item_id)
        if replay is not None:
            return replay
        raise


@transaction.atomic
def _submit(*, project: Project, annotator, item_id: int, judgment: Judgment, key: str, now: datetime) -> SubmitResult:
    assignment = (
        Assignment.objects.select_for_update()
        .filter(project=project, annotator=annotator, item_id=item_id)
        .first()
    )
    if assignment is None or assignment.status != ST.ACTIVE:
        # Checked under the row lock: a concurrent twin of this request may have just committed.
        replay = _replay(annotator=annotator, key=key, item_id=item_id, assignment=assignment)
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
    clean = validate_for_project(project=project, judgment=judgment, shown_order=list(assignment.shown_order))
    if assignment.status in (ST.EXPIRED, ST.RELEASED) and not _reclaim(assignment, project=project, now=now):
        raise StaleAssignment(
            "Your time on this item ran out and it went to another annotator. Nothing was saved; "
            "your answers are still in the form. Copy anything you want to keep, then take the next item.",
            code="reassigned",
        )
    previous = assignment.annotation
    supersedes = previous if previous is not None and previous.retracted else None
    duration_ms = max(0, int((now - assignment.served_at).total_seconds() * 1000))
    annotation = _store(
        project=project, item_id=item_id, clean=clean, source=Annotation.Source.HUMAN, annotator=annotator,
        shown_order=list(assignment.shown_order), duration_ms=duration_ms, supersedes=supersedes,
        idempotency_key=key,
    )
    assignment.status, assignment.annotation, assignment.submitted_at = ST.DONE, annotation, now
    # The lease now bounds the undo window.
    assignment.expires_at = now + _lease(project)
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
    last.served_at, last.expires_at = now, now + _lease(project)
    last.save(update_fields=["status", "annotation", "submitted_at", "served_at", "expires_at"])
    return last


def _end_lease(*, project: Project, annotator, item_id: int, status: str, reason: str, note: str) -> Assignment:
    assignment = _own_assignment(project=project, annotator=annotator, item_id=item_id)
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
def adjudication_record(*, project: Project, adjudicator, item: Item, judgment: Judgment) -> Annotation:
    """Record the final decision on ``item`` as a new ``Annotation(source="adjudication")``.

    A later decision supersedes the earlier one (the item row is locked so two adjudicators cannot
    both supersede the same record). Validated by the same rules as annotators' submissions, over
    the item's responses in source order.
    """
    if item.project_id != project.pk:
        raise WorkbenchError("That item is not in this project.", code="not_found")
    Item.objects.select_for_update().filter(pk=item.pk).first()
    order = list(item.responses.order_by("position").values_list("pk", flat=True))
    clean = validate_for_project(project=project, judgment=judgment, shown_order=order)
    previous = (
        Annotation.objects.filter(item=item, source=Annotation.Source.ADJUDICATION, superseded_by__isnull=True)
        .order_by("-pk")
        .first()
    )
    return _store(
        project=project, item_id=item.pk, clean=clean, source=Annotation.Source.ADJUDICATION,
        annotator=adjudicator, shown_order=order, duration_ms=None, supersedes=previous, idempotency_key="",
    )
