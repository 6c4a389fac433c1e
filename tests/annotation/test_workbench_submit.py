"""Submitting, validating, idempotency, undo, and adjudication records."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import Annotation, Project
from annotation.workbench import services as wb
from annotation.workbench.judgments import Judgment, JudgmentInvalid, ResponseLabel, StaleAssignment, WorkbenchError
from tests.annotation.workbench_fixtures import full_judgment, make_annotators, make_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def leased(project, tmp_path, annotator):
    make_items(project, tmp_path, 3)
    a = wb.queue_next(project=project, annotator=annotator)
    return project, annotator, a


def test_it_stores_ranking_safety_principles_and_server_timing(leased):
    # given
    project, user, a = leased
    order = a.shown_order
    principle = project.principle_set.principles.first()
    judgment = Judgment(
        ranking=[[order[0], order[1]], [order[2]]],
        response_labels={
            order[0]: ResponseLabel("safe"),
            order[1]: ResponseLabel("needs_caution"),
            order[2]: ResponseLabel("unsafe", ("S1", "S7")),
        },
        principles=(principle.pk,), principles_conflicted=True, rationale="r", confidence=4,
    )
    served = a.served_at
    # when
    result = wb.annotation_submit(
        project=project, annotator=user, item_id=a.item_id, judgment=judgment, now=served + timedelta(seconds=7)
    )
    # then
    ann = result.annotation
    assert ann.ranking == [[order[0], order[1]], [order[2]]]
    assert ann.duration_ms == 7000 and ann.shown_order == order
    assert ann.taxonomy_version_id == project.taxonomy_version_id
    assert {rs.response_id: (rs.label, rs.categories) for rs in ann.response_safety.all()}[order[2]] == ("unsafe", ["S1", "S7"])
    assert list(ann.principles.values_list("pk", flat=True)) == [principle.pk]
    assert ann.principles_conflicted and ann.confidence == 4


@pytest.mark.parametrize(
    "bad, field",
    [
        (lambda o: dict(ranking=[[o[0]], [o[1]]]), "ranking"),  # incomplete
        (lambda o: dict(ranking=[[o[0], o[1]], [o[1], o[2]]]), "ranking"),  # twice
        (lambda o: dict(ranking=[[o[0]], [o[1]], [o[2]], [999999]]), "ranking"),  # foreign id
        (lambda o: dict(ranking=[[o[0]], [], [o[1], o[2]]]), "ranking"),  # empty group
        (lambda o: dict(response_labels={o[0]: ResponseLabel("unsafe")}), "label-{o0}"),  # no category
        (lambda o: dict(response_labels={o[0]: ResponseLabel("unsafe", ("S999",))}), "label-{o0}"),
        (lambda o: dict(response_labels={o[0]: ResponseLabel("safe", ("S1",))}), "label-{o0}"),
        (lambda o: dict(confidence=6), "confidence"),
        (lambda o: dict(principles=(10**9,)), "principles"),
        (lambda o: dict(pair_choice="a", pair_strength=2), "pair_choice"),  # wrong mode
    ],
)
def test_it_rejects_invalid_judgments_and_stores_nothing(leased, bad, field):
    project, user, a = leased
    o = a.shown_order
    base = full_judgment(project, o)
    over = bad(o)
    if "response_labels" in over:
        over["response_labels"] = {**base.response_labels, **over["response_labels"]}
    judgment = Judgment(**{**base.__dict__, **over})
    with pytest.raises(JudgmentInvalid) as err:
        wb.annotation_submit(project=project, annotator=user, item_id=a.item_id, judgment=judgment)
    assert field.replace("{o0}", str(o[0])) in err.value.errors
    assert not Annotation.objects.filter(item_id=a.item_id).exists()
    a.refresh_from_db()
    assert a.status == "active"


def test_unsafe_without_category_passes_when_the_project_allows_it(leased):
    project, user, a = leased
    Project.objects.filter(pk=project.pk).update(require_category_when_unsafe=False)
    project.refresh_from_db()
    labels = {rid: ResponseLabel("unsafe") for rid in a.shown_order}
    wb.annotation_submit(
        project=project, annotator=user, item_id=a.item_id,
        judgment=full_judgment(project, a.shown_order, response_labels=labels),
    )


def test_the_same_idempotency_key_stores_one_record(leased):
    project, user, a = leased
    j = full_judgment(project, a.shown_order)
    first = wb.annotation_submit(project=project, annotator=user, item_id=a.item_id, judgment=j, idempotency_key="k1")
    again = wb.annotation_submit(project=project, annotator=user, item_id=a.item_id, judgment=j, idempotency_key="k1")
    assert again.replayed and again.annotation.pk == first.annotation.pk
    assert Annotation.objects.filter(annotator=user).count() == 1
    with pytest.raises(StaleAssignment) as err:
        wb.annotation_submit(project=project, annotator=user, item_id=a.item_id, judgment=j, idempotency_key="k2")
    assert err.value.code == "already_submitted"


def test_undo_supersedes_instead_of_deleting(leased):
    # given: a submission, and the next item leased
    project, user, a = leased
    first = wb.annotation_submit(
        project=project, annotator=user, item_id=a.item_id, judgment=full_judgment(project, a.shown_order)
    ).annotation
    nxt = wb.queue_next(project=project, annotator=user)
    # when
    back = wb.annotation_undo_last(project=project, annotator=user)
    # then: the item is mine again, the next item went back to the pool, nothing was deleted
    assert back.item_id == a.item_id and back.status == "active"
    nxt.refresh_from_db()
    assert nxt.status == "released"
    retraction = Annotation.objects.get(supersedes=first)
    assert retraction.retracted and retraction.annotator == user
    assert wb.queue_next(project=project, annotator=user).item_id == a.item_id
    # and re-submitting supersedes the retraction
    redo = wb.annotation_submit(
        project=project, annotator=user, item_id=a.item_id, judgment=full_judgment(project, a.shown_order)
    ).annotation
    assert redo.supersedes_id == retraction.pk
    assert Annotation.objects.filter(item_id=a.item_id).count() == 3
    current = Annotation.objects.filter(item_id=a.item_id, retracted=False, superseded_by__isnull=True)
    assert list(current) == [redo]


def test_undo_is_refused_after_the_lease_time(leased):
    project, user, a = leased
    wb.annotation_submit(project=project, annotator=user, item_id=a.item_id, judgment=full_judgment(project, a.shown_order))
    with pytest.raises(WorkbenchError) as err:
        wb.annotation_undo_last(project=project, annotator=user, now=timezone.now() + timedelta(hours=1))
    assert err.value.code == "undo_window_passed"


def test_a_retraction_must_point_at_what_it_retracts(leased):
    project, user, a = leased
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation(project=project, item_id=a.item_id, source="human", annotator=user, retracted=True).save()


def test_submitting_an_item_never_handed_out_is_refused(project, tmp_path, annotator):
    items = make_items(project, tmp_path, 2)
    with pytest.raises(StaleAssignment):
        wb.annotation_submit(project=project, annotator=annotator, item_id=items[0].pk, judgment=Judgment())


def test_pairwise_stores_the_first_two_shown_as_a_and_b(project, tmp_path, annotator):
    Project.objects.filter(pk=project.pk).update(mode="pairwise")
    project.refresh_from_db()
    make_items(project, tmp_path, 1, responses=2)
    a = wb.queue_next(project=project, annotator=annotator)
    with pytest.raises(JudgmentInvalid):
        wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id, judgment=Judgment(pair_choice="a"))
    ann = wb.annotation_submit(
        project=project, annotator=annotator, item_id=a.item_id, judgment=Judgment(pair_choice="b", pair_strength=3)
    ).annotation
    assert (ann.pair_a_id, ann.pair_b_id, ann.pair_choice, ann.pair_strength) == (*a.shown_order[:2], "b", 3)


def test_adjudication_is_a_new_record_that_supersedes_the_previous_decision(project, tmp_path, researcher):
    (item,) = make_items(project, tmp_path, 1)
    order = list(item.responses.order_by("position").values_list("pk", flat=True))
    first = wb.adjudication_record(project=project, adjudicator=researcher, item=item, judgment=full_judgment(project, order))
    second = wb.adjudication_record(project=project, adjudicator=researcher, item=item, judgment=full_judgment(project, order[::-1]))
    assert first.source == second.source == "adjudication"
    assert second.supersedes_id == first.pk
    with pytest.raises(JudgmentInvalid):
        wb.adjudication_record(project=project, adjudicator=researcher, item=item, judgment=Judgment(ranking=[[order[0]]]))


def test_annotators_of_one_project_cannot_submit_into_another(project, other_project, tmp_path, annotator):
    make_items(project, tmp_path, 1)
    a = wb.queue_next(project=project, annotator=annotator)
    with pytest.raises(StaleAssignment):
        wb.annotation_submit(project=other_project, annotator=annotator, item_id=a.item_id, judgment=Judgment())
    users = make_annotators(project, 1)
    with pytest.raises(StaleAssignment):
        wb.annotation_submit(project=project, annotator=users[0], item_id=a.item_id, judgment=Judgment())


# --- A key names one submission (issue: hardening 5) ---------------------------------------------------


def test_a_key_reused_after_undo_is_refused_and_the_new_answer_is_not_lost(project, tmp_path, annotator):
    from django.test import Client
    from django.urls import reverse

    make_items(project, tmp_path, 1)
    c = Client()
    c.force_login(annotator)
    payload = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    ids = [r["id"] for r in payload["responses"]]
    submit = reverse("api-annotate-submit", args=[project.slug])
    first = {"item": payload["item"], "idempotency_key": "k1", "ranking": [[i] for i in ids],
             "response_safety": [{"response": i, "label": "safe"} for i in ids]}
    assert c.post(submit, first, content_type="application/json").status_code == 201
    assert c.post(reverse("api-annotate-undo", args=[project.slug])).status_code == 200
    # the corrected answer, sent with the withdrawn submission's key: refused with a reason, not "replayed"
    second = {**first, "ranking": [[i] for i in reversed(ids)]}
    refused = c.post(submit, second, content_type="application/json")
    assert refused.status_code == 409 and refused.json()["code"] == "key_withdrawn"
    # with a new key it is stored and supersedes the retraction
    stored = c.post(submit, {**second, "idempotency_key": "k2"}, content_type="application/json")
    assert stored.status_code == 201
    latest = Annotation.objects.get(pk=stored.json()["annotation"])
    assert latest.ranking == [[i] for i in reversed(ids)] and latest.supersedes.retracted


def test_a_key_reused_with_a_different_answer_is_refused_and_a_true_repeat_is_replayed(project, tmp_path, annotator):
    from django.test import Client
    from django.urls import reverse

    make_items(project, tmp_path, 2)
    c = Client()
    c.force_login(annotator)
    payload = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    ids = [r["id"] for r in payload["responses"]]
    submit = reverse("api-annotate-submit", args=[project.slug])
    body = {"item": payload["item"], "idempotency_key": "k1", "ranking": [[i] for i in ids],
            "response_safety": [{"response": i, "label": "safe"} for i in ids], "rationale": "first"}
    assert c.post(submit, body, content_type="application/json").status_code == 201
    again = c.post(submit, body, content_type="application/json")
    assert again.status_code == 200 and again.json()["replayed"] is True
    changed = c.post(submit, {**body, "rationale": "second thoughts"}, content_type="application/json")
    assert changed.status_code == 409 and changed.json()["code"] == "key_reused"
    assert Annotation.objects.filter(annotator=annotator).count() == 1
