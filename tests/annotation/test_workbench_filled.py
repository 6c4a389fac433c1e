"""``Item.filled``, the trigger-kept count of live slotted assignments the queue reads."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Count, Q
from django.utils import timezone

from annotation.models import Assignment, Item
from annotation.workbench import services as wb
from tests.annotation.workbench_fixtures import full_judgment, make_annotators, make_items

pytestmark = pytest.mark.django_db


def _true_counts(project) -> dict[int, int]:
    live = Q(assignments__status__in=["active", "done"], assignments__slot__isnull=False)
    return dict(Item.objects.filter(project=project).annotate(n=Count("assignments", filter=live)).values_list("pk", "n"))


def _filled(project) -> dict[int, int]:
    return dict(Item.objects.filter(project=project).values_list("pk", "filled"))


def test_filled_follows_claims_submits_skips_flags_undos_and_expiry(project, tmp_path):
    items = make_items(project, tmp_path, 4)
    a, b, c = make_annotators(project, 3)
    now = timezone.now()
    first = wb.queue_next(project=project, annotator=a, now=now)
    wb.annotation_submit(project=project, annotator=a, item_id=first.item_id,
                         judgment=full_judgment(project, first.shown_order), idempotency_key="a1", now=now)
    second = wb.queue_next(project=project, annotator=b, now=now)
    assert second.item_id == first.item_id  # overlap 2: the first item is still open
    assert _filled(project)[first.item_id] == 2 == _true_counts(project)[first.item_id]
    wb.assignment_skip(project=project, annotator=b, item_id=second.item_id, reason="unsure")
    assert _filled(project)[first.item_id] == 1
    third = wb.queue_next(project=project, annotator=c, now=now)
    assert third.item_id == first.item_id  # the skipped slot went back to the pool
    wb.assignment_flag(project=project, annotator=c, item_id=third.item_id, kind="broken")
    a_next = wb.queue_next(project=project, annotator=a, now=now)
    wb.annotation_undo_last(project=project, annotator=a, now=now)  # releases a_next, reopens first
    assert Assignment.objects.get(pk=a_next.pk).status == "released"
    assert _filled(project) == _true_counts(project)
    # A lease that lapsed still counts as filled until a claimer expires it, and the queue finds it.
    later = now + timedelta(seconds=project.lease_seconds + 5)
    for user in (b, c):
        got = wb.queue_next(project=project, annotator=user, now=later)
        assert got is not None
    assert _filled(project) == _true_counts(project)
    assert all(0 <= n <= project.overlap for n in _filled(project).values())
    assert sorted(_filled(project)) == sorted(i.pk for i in items)


def test_application_writes_to_filled_are_ignored(project, tmp_path, annotator):
    item = make_items(project, tmp_path, 1)[0]
    wb.queue_next(project=project, annotator=annotator)
    item.refresh_from_db()
    assert item.filled == 1
    stale = Item.objects.get(pk=item.pk)
    stale.filled = 0
    stale.priority = 5
    stale.save()  # e.g. an admin edit with an old copy: the priority is saved, the counter kept
    Item.objects.filter(pk=item.pk).update(filled=7)
    item.refresh_from_db()
    assert (item.filled, item.priority) == (1, 5)


def test_a_full_item_is_not_offered_and_a_lapsed_one_is(project, tmp_path):
    items = make_items(project, tmp_path, 2)
    a, b, c = make_annotators(project, 3)
    now = timezone.now()
    got_a = wb.queue_next(project=project, annotator=a, now=now)
    got_b = wb.queue_next(project=project, annotator=b, now=now)
    assert got_a.item_id == got_b.item_id == items[0].pk
    assert wb.queue_next(project=project, annotator=c, now=now).item_id == items[1].pk
    wb.assignment_skip(project=project, annotator=c, item_id=items[1].pk, reason="unsure")
    # c skipped the second item and the first is full: nothing for c until a lease lapses.
    assert wb.queue_next(project=project, annotator=c, now=now) is None
    later = now + timedelta(seconds=project.lease_seconds + 1)
    assert wb.queue_next(project=project, annotator=c, now=later).item_id == items[0].pk
    assert _filled(project) == _true_counts(project)
