"""The one-request cycle (``POST submit/?next=1``) and the SQL budget of the API's hot paths."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotation.models import Annotation, Assignment
from tests.annotation.workbench_fixtures import make_annotators, make_items

pytestmark = pytest.mark.django_db


def _body(payload: dict, key: str) -> dict:
    ids = [r["id"] for r in payload["responses"]]
    return {
        "item": payload["item"], "idempotency_key": key, "ranking": [[i] for i in ids],
        "response_safety": [{"response": i, "label": "safe"} for i in ids],
    }


def test_submit_with_next_returns_the_next_lease_and_ends_with_null(project, tmp_path, annotator):
    items = make_items(project, tmp_path, 3)
    c = Client()
    c.force_login(annotator)
    submit = reverse("api-annotate-submit", args=[project.slug]) + "?next=1"
    payload = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    seen = [payload["item"]]
    for n in range(3):
        r = c.post(submit, _body(payload, f"k{n}"), content_type="application/json")
        assert r.status_code == 201, r.content
        data = r.json()
        assert data["item"] == seen[-1] and data["replayed"] is False
        # A double click of the same submit: replayed, stores nothing, and names the same next item.
        again = c.post(submit, _body(payload, f"k{n}"), content_type="application/json")
        assert again.status_code == 200 and again.json()["replayed"] is True
        assert again.json()["next"] == data["next"]
        if n < 2:
            payload = data["next"]
            assert payload["item"] not in seen and [r["id"] for r in payload["responses"]]
            # The lease really is held: next/ gives back the same one.
            assert c.post(reverse("api-annotate-next", args=[project.slug])).json()["item"] == payload["item"]
            seen.append(payload["item"])
        else:
            assert data["next"] is None  # queue empty for this annotator
    assert sorted(seen) == sorted(i.pk for i in items)
    assert Annotation.objects.filter(project=project, annotator=annotator).count() == 3
    assert not Assignment.objects.filter(project=project, annotator=annotator, status="active").exists()


def test_submit_with_next_claims_nothing_when_the_submit_is_refused(project, tmp_path, annotator):
    make_items(project, tmp_path, 3)
    c = Client()
    c.force_login(annotator)
    payload = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    bad = {**_body(payload, "bad"), "ranking": [[payload["responses"][0]["id"]]]}
    r = c.post(reverse("api-annotate-submit", args=[project.slug]) + "?next=1", bad, content_type="application/json")
    assert r.status_code == 400 and "next" not in r.json()
    assert list(Assignment.objects.filter(annotator=annotator).values_list("item_id", "status")) == [
        (payload["item"], "active")
    ]


def test_without_next_the_submit_answer_is_unchanged(project, tmp_path, annotator):
    make_items(project, tmp_path, 2)
    c = Client()
    c.force_login(annotator)
    payload = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    r = c.post(reverse("api-annotate-submit", args=[project.slug]), _body(payload, "x"), content_type="application/json")
    assert r.status_code == 201 and "next" not in r.json()
    assert not Assignment.objects.filter(annotator=annotator, status="active").exists()


def test_sql_statements_per_request_stay_within_budget(project, tmp_path, annotator):
    """Guards the cheap hot path. Every request: session, user, project, groups, membership (5).
    A claim: current lease, candidate item, the item's assignments, its responses, insert (5). A
    submit naming a category: lock, category check, 2 inserts, update (5). The test's own
    transaction turns each atomic block into a SAVEPOINT/RELEASE pair (2 more per block).
    Before this work each took 17, so the old code fails these bounds."""
    make_items(project, tmp_path, 20)
    others = make_annotators(project, 1)
    c = Client()
    c.force_login(annotator)
    # Someone else has filled the first items, so the claim has to look past them.
    o = Client()
    o.force_login(others[0])
    for n in range(3):
        p = o.post(reverse("api-annotate-next", args=[project.slug])).json()
        o.post(reverse("api-annotate-submit", args=[project.slug]), _body(p, f"o{n}"), content_type="application/json")
    with CaptureQueriesContext(connection) as q:
        payload = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    assert len(q.captured_queries) <= 12, [x["sql"][:120] for x in q.captured_queries]
    body = _body(payload, "b1")
    body["response_safety"][0] = {"response": body["response_safety"][0]["response"], "label": "unsafe", "categories": ["S1"]}
    with CaptureQueriesContext(connection) as q:
        r = c.post(reverse("api-annotate-submit", args=[project.slug]), body, content_type="application/json")
    assert r.status_code == 201, r.content
    assert len(q.captured_queries) <= 12, [x["sql"][:120] for x in q.captured_queries]
    payload = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    with CaptureQueriesContext(connection) as q:
        r = c.post(
            reverse("api-annotate-submit", args=[project.slug]) + "?next=1", _body(payload, "b2"),
            content_type="application/json",
        )
    assert r.status_code == 201 and r.json()["next"]["item"] not in (None, payload["item"])
    # One request for a whole cycle: the per-request part once, the submit, then the claim (which
    # skips the current-lease look-up right after a submit).
    assert len(q.captured_queries) <= 17, [x["sql"][:120] for x in q.captured_queries]


_spec = importlib.util.spec_from_file_location(
    "annotate_load", Path(__file__).resolve().parents[2] / "bench" / "annotate_load.py"
)
assert _spec is not None and _spec.loader is not None
load = importlib.util.module_from_spec(_spec)
sys.modules["annotate_load"] = load  # dataclasses look their module up while the class is built
_spec.loader.exec_module(load)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_twenty_annotators_one_request_per_item(live_server, project, tmp_path):
    # given: overlap 2, 40 items, 20 logged-in annotator sessions using submit/?next=1
    items = make_items(project, tmp_path, 40, responses=3)
    users = make_annotators(project, 20)
    # when: all of them work at once until the queue is empty; about one submit in five is sent twice
    logs, _ = load.run_annotators(
        live_server.url, project.slug, [(u.username, f"pw-{u.username}") for u in users], retry_rate=0.2,
        one_request=True,
    )
    # then: nothing lost or doubled, nobody handed an item twice, every replay named the same next item
    assert load.integrity_problems(project, logs, expected_per_item=2) == []
    assert sum(len(log.acknowledged) for log in logs) == 2 * len(items)
    assert sum(log.replays for log in logs) > 0
    assert not Assignment.objects.filter(project=project, status="active").exists()


def test_a_key_reused_on_an_active_lease_is_refused_and_stores_nothing(project, tmp_path, annotator):
    """The normal submit skips the replay lookup; the unique key index still catches reuse."""
    from annotation.workbench import services as wb
    from annotation.workbench.judgments import WorkbenchError
    from tests.annotation.workbench_fixtures import full_judgment

    make_items(project, tmp_path, 2)
    first = wb.queue_next(project=project, annotator=annotator)
    wb.annotation_submit(project=project, annotator=annotator, item_id=first.item_id,
                         judgment=full_judgment(project, first.shown_order), idempotency_key="same")
    second = wb.queue_next(project=project, annotator=annotator)
    with pytest.raises(WorkbenchError) as err:
        wb.annotation_submit(project=project, annotator=annotator, item_id=second.item_id,
                             judgment=full_judgment(project, second.shown_order), idempotency_key="same")
    assert err.value.code == "key_reused"
    assert Annotation.objects.filter(annotator=annotator).count() == 1
    assert Assignment.objects.get(pk=second.pk).status == "active"


def test_resending_the_original_submit_after_an_undo_is_refused_not_replayed(project, tmp_path, annotator):
    """The withdrawn record must not be handed back as if the resend were stored (hardening 5)."""
    from annotation.workbench import services as wb
    from annotation.workbench.judgments import WorkbenchError
    from tests.annotation.workbench_fixtures import full_judgment

    make_items(project, tmp_path, 2)
    lease = wb.queue_next(project=project, annotator=annotator)
    judgment = full_judgment(project, lease.shown_order)
    wb.annotation_submit(project=project, annotator=annotator, item_id=lease.item_id, judgment=judgment,
                         idempotency_key="orig")
    wb.annotation_undo_last(project=project, annotator=annotator)  # the lease is active again
    with pytest.raises(WorkbenchError) as err:
        wb.annotation_submit(project=project, annotator=annotator, item_id=lease.item_id, judgment=judgment,
                             idempotency_key="orig")
    assert err.value.code == "key_withdrawn"
    assert Annotation.objects.filter(annotator=annotator).count() == 2  # the record and its retraction
    assert Assignment.objects.get(pk=lease.pk).status == "active"



@pytest.mark.parametrize("n_items", [2, 3], ids=["nothing-else-to-claim", "claim-refused-by-one-lease-rule"])
def test_after_submit_still_returns_a_lease_the_annotator_holds(project, tmp_path, n_items):
    """The claim after a submit skips the current-lease look-up. A lease held after all (here the
    submitted item was a lapsed lease taken back while another lease is active) is still returned:
    with 2 items nothing else can be claimed; with 3 the claim of the third is refused by the
    one-active-lease constraint and the retry finds the lease."""
    from datetime import timedelta

    from django.utils import timezone

    from annotation.workbench import services as wb
    from tests.annotation.workbench_fixtures import full_judgment

    items = make_items(project, tmp_path, n_items)
    u1, u2, u3 = make_annotators(project, 3)
    t0 = timezone.now()
    lapsed = wb.queue_next(project=project, annotator=u1, now=t0)
    assert lapsed.item_id == items[0].pk
    t1 = t0 + timedelta(seconds=project.lease_seconds + 1)
    assert wb.queue_next(project=project, annotator=u2, now=t1).item_id == items[0].pk  # expires u1's lease
    assert wb.queue_next(project=project, annotator=u3, now=t1).item_id == items[0].pk  # item 0 is full
    held = wb.queue_next(project=project, annotator=u1, now=t1)
    assert held.item_id == items[1].pk
    wb.assignment_skip(project=project, annotator=u3, item_id=items[0].pk, reason="unsure")  # a slot frees
    done = wb.annotation_submit(project=project, annotator=u1, item_id=items[0].pk,
                                judgment=full_judgment(project, lapsed.shown_order), now=t1)
    assert not done.replayed and done.assignment.status == "done"
    got = wb.queue_next(project=project, annotator=u1, now=t1, after_submit=True)
    assert got is not None and got.pk == held.pk
    assert list(Assignment.objects.filter(annotator=u1, status="active").values_list("pk", flat=True)) == [held.pk]
