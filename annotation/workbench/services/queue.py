"""The workbench queue: which item an annotator gets next, and the leases that hold it.

Every function is keyword-only and atomic. The promises the queue makes are held by the database
(see :class:`annotation.models.Assignment`); the code below is written so that they are also met
without tripping over those constraints under concurrency. The submissions in
:mod:`annotation.workbench.services.submissions` follow the same order.

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
  lapsed leases with ``SKIP LOCKED`` (:func:`expire_lapsed`) and never waits for an assignment row.
"""
from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Subquery
from django.utils import timezone

from annotation.dbretry import retry_on_lock
from annotation.models import Assignment, Item, Project
from annotation.workbench import selectors
from annotation.workbench.judgments import StaleAssignment

ST = Assignment.Status
# How many candidates one claim looks at before it gives up on a contended queue.
CLAIM_ATTEMPTS = 25


def lease_length(project: Project) -> timedelta:
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


def expire_lapsed(pks: list[int], *, now: datetime) -> int:
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
        if lapsed and expire_lapsed(lapsed, now=now) != len(lapsed):
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
    responses = list(item.responses.judged().order_by("position"))  # never edits (issue 11)
    if mine is None:
        mine = Assignment(
            project=project, item=item, annotator=annotator, is_gold=gold,
            shown_order=_shuffled([r.pk for r in responses], item.pk, annotator),
        )
    else:
        mine.item = item
    mine.status, mine.slot, mine.served_at, mine.expires_at = ST.ACTIVE, slot, now, now + lease_length(project)
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
        if current.expires_at < now + lease_length(project) / 2:
            current.expires_at = now + lease_length(project)
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


def own_assignment(*, project: Project, annotator, item_id: int) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update()
        .filter(project=project, annotator=annotator, item_id=item_id)
        .first()
    )
    if assignment is None:
        raise StaleAssignment("This item was not handed to you, so nothing was saved.", code="not_assigned")
    return assignment


def reclaim(assignment: Assignment, *, project: Project, now: datetime) -> bool:
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
        expire_lapsed(lapsed, now=now)
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
