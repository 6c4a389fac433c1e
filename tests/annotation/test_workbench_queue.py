"""The annotation queue: overlap, nobody twice, leases, priority, gold, skip and flag."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotation.models import Annotation, Assignment, Item
from annotation.workbench import services as wb
from annotation.workbench.judgments import StaleAssignment, WorkbenchError
from tests.annotation.workbench_fixtures import full_judgment, make_annotators, make_items

pytestmark = pytest.mark.django_db


def submit(project, user, a, **extra):
    return wb.annotation_submit(
        project=project, annotator=user, item_id=a.item_id, judgment=full_judgment(project, a.shown_order), **extra
    )


def test_it_gives_each_item_to_at_most_overlap_annotators_and_nobody_twice(project, tmp_path):
    # given: overlap 2, three items, four annotators
    items = make_items(project, tmp_path, 3)
    users = make_annotators(project, 4)
    # when: everyone works until the queue is empty
    seen: dict[int, list[int]] = {u.pk: [] for u in users}
    progress = True
    while progress:
        progress = False
        for u in users:
            a = wb.queue_next(project=project, annotator=u)
            if a is not None:
                assert a.item_id not in seen[u.pk], "an annotator got the same item twice"
                seen[u.pk].append(a.item_id)
                submit(project, u, a)
                progress = True
    # then
    for item in items:
        assert Annotation.objects.filter(item=item, source="human").count() == 2
    assert sum(len(v) for v in seen.values()) == 6


def test_a_reload_returns_the_same_lease(project, tmp_path):
    make_items(project, tmp_path, 3)
    (u,) = make_annotators(project, 1)
    first = wb.queue_next(project=project, annotator=u)
    again = wb.queue_next(project=project, annotator=u)
    assert first.pk == again.pk and first.item_id == again.item_id
    assert Assignment.objects.filter(annotator=u, status="active").count() == 1


def test_the_database_refuses_a_third_live_slot_and_a_second_row_per_annotator(project, tmp_path):
    (item,) = make_items(project, tmp_path, 1)
    u1, u2, u3 = make_annotators(project, 3)
    now = timezone.now()
    common = dict(project=project, item=item, expires_at=now + timedelta(minutes=5))
    Assignment.objects.create(annotator=u1, slot=0, **common)
    Assignment.objects.create(annotator=u2, slot=1, **common)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(annotator=u3, slot=1, **common)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(annotator=u1, slot=0, status="skipped", **common)


def test_an_expired_lease_goes_back_to_the_pool(project, tmp_path):
    # given: overlap 1, one item leased by u1 whose lease ran out
    project.overlap = 1
    project.save(update_fields=["overlap"])
    (item,) = make_items(project, tmp_path, 1)
    u1, u2 = make_annotators(project, 2)
    a1 = wb.queue_next(project=project, annotator=u1)
    assert wb.queue_next(project=project, annotator=u2) is None  # still leased
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 1)
    # when
    a2 = wb.queue_next(project=project, annotator=u2, now=later)
    # then: u2 has it, u1's lease is expired, and u1's late submit is refused, storing nothing
    assert a2 is not None and a2.item_id == item.pk
    a1.refresh_from_db()
    assert a1.status == "expired"
    with pytest.raises(StaleAssignment) as err:
        submit(project, u1, a1, now=later)
    assert err.value.code == "reassigned"
    assert not Annotation.objects.filter(annotator=u1).exists()


def test_a_lapsed_lease_nobody_else_took_is_still_honoured(project, tmp_path):
    make_items(project, tmp_path, 1)
    (u1,) = make_annotators(project, 1)
    a1 = wb.queue_next(project=project, annotator=u1)
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 60)
    result = submit(project, u1, a1, now=later)
    assert result.annotation.duration_ms >= project.lease_seconds * 1000


def test_priority_items_come_first(project, tmp_path):
    items = make_items(project, tmp_path, 4)
    Item.objects.filter(pk=items[2].pk).update(priority=5)  # what the jury does for disputed items
    (u,) = make_annotators(project, 1)
    assert wb.queue_next(project=project, annotator=u).item_id == items[2].pk


def test_gold_items_are_mixed_in_at_the_gold_rate(project, tmp_path):
    project.gold_rate = 0.25
    project.save(update_fields=["gold_rate"])
    regular = make_items(project, tmp_path, 8, prefix="r")
    gold = make_items(project, tmp_path, 3, prefix="g")
    Item.objects.filter(pk__in=[g.pk for g in gold]).update(is_gold=True, gold_answer={"ranking": "known"})
    (u,) = make_annotators(project, 1)
    served = []
    for _ in range(8):
        a = wb.queue_next(project=project, annotator=u)
        served.append(a.is_gold)
        submit(project, u, a)
    # floor(0.25 * n): the 4th and 8th items are gold
    assert served == [False, False, False, True, False, False, False, True]
    assert len(regular) == 8


def test_skip_with_reason_frees_the_slot_and_never_returns_the_item(project, tmp_path):
    project.overlap = 1
    project.save(update_fields=["overlap"])
    (item,) = make_items(project, tmp_path, 1)
    u1, u2 = make_annotators(project, 2)
    a = wb.queue_next(project=project, annotator=u1)
    with pytest.raises(WorkbenchError):
        wb.assignment_skip(project=project, annotator=u1, item_id=a.item_id, reason="because")
    wb.assignment_skip(project=project, annotator=u1, item_id=a.item_id, reason="language")
    assert wb.queue_next(project=project, annotator=u1) is None
    assert wb.queue_next(project=project, annotator=u2).item_id == item.pk
    a.refresh_from_db()
    assert (a.status, a.reason) == ("skipped", "language")


def test_flag_records_the_kind_and_a_flagged_item_cannot_be_submitted(project, tmp_path):
    make_items(project, tmp_path, 2)
    (u,) = make_annotators(project, 1)
    a = wb.queue_next(project=project, annotator=u)
    with pytest.raises(WorkbenchError):
        wb.assignment_flag(project=project, annotator=u, item_id=a.item_id, kind="boring")
    wb.assignment_flag(project=project, annotator=u, item_id=a.item_id, kind="harmful_to_view", note="gore")
    with pytest.raises(StaleAssignment):
        submit(project, u, a)
    nxt = wb.queue_next(project=project, annotator=u)
    assert nxt.item_id != a.item_id


def test_shown_order_is_shuffled_per_annotator_and_stored(project, tmp_path):
    (item,) = make_items(project, tmp_path, 1, responses=9)
    users = make_annotators(project, 2)
    orders = [wb.queue_next(project=project, annotator=u).shown_order for u in users]
    source = list(item.responses.order_by("position").values_list("pk", flat=True))
    assert sorted(orders[0]) == sorted(source) == sorted(orders[1])
    assert orders[0] != orders[1] or orders[0] != source  # 9! orders: equal by chance is ~never
    result = submit(project, users[0], wb.queue_next(project=project, annotator=users[0]))
    assert result.annotation.shown_order == orders[0]


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_exceed_overlap(presets, researcher, annotator, tmp_path):
    # given: a project with overlap 2 and more annotators than slots
    from annotation import services

    project = services.project_create(
        slug="race", name="Race", taxonomy_version=presets["taxonomies"]["aegis-2.0"], overlap=2, created_by=researcher,
    )
    make_items(project, tmp_path, 3)
    users = make_annotators(project, 8)
    barrier = threading.Barrier(len(users))
    errors: list[BaseException] = []

    def work(user):
        try:
            barrier.wait()
            wb.queue_next(project=project, annotator=user)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then: 6 slots for 8 people, every slot taken once, nobody holds two
    assert not errors
    live = Assignment.objects.filter(project=project, status="active")
    assert live.count() == 6
    for item_id in set(live.values_list("item_id", flat=True)):
        assert live.filter(item_id=item_id).count() == 2
    assert len(set(live.values_list("annotator_id", flat=True))) == 6
