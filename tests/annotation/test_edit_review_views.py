"""The edit review page and its adjudication (issue 11): escaping, the no-JS and htmx flows, who
may see what."""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Annotation, Item, Response
from annotation.workbench import services as wb
from tests.annotation.edit_review_fixtures import make_review_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviews(project, tmp_path):
    return make_review_items(project, tmp_path, n=3)


def test_the_review_page_shows_the_diff_and_what_drove_the_edit_escaped(login, project, reviews):
    # the third edit carries markup; make the annotator's first item be it
    client = login("annotator")
    html = client.get(reverse("workbench", args=[project.slug])).content.decode()
    while 'data-kind="edit_review"' not in html:  # judge items first (one of each edit's source item)
        item_id = int(html.split('name="item" value="')[1].split('"')[0])
        wb.assignment_skip(project=project, annotator=_user(project, "bob_annotator"), item_id=item_id, reason="unsure")
        html = client.get(reverse("workbench", args=[project.slug])).content.decode()
    assert "<ins>" in html and "<del>" in html
    assert "Rationale: the answer omits the &lt;danger&gt; of mixing cleaners." in html
    assert "<danger>" not in html
    assert "smollm2-135m (local)" in html and "improve-default v2" in html
    assert 'data-testid="edit-direction">improve' in html
    assert 'name="edit_fix"' in html and "Never mix bleach with ammonia; open a window and wear gloves." in html


def test_the_review_page_names_items_by_place_and_shows_the_progress_of_the_judge_page(login, project, reviews):
    from annotation.workbench.selectors import item_place

    client = login("annotator")
    lease = _to_first_review(client, project)
    html = client.get(reverse("workbench", args=[project.slug])).content.decode()
    place = item_place(lease.item)
    assert f"Review an edit · {place}" in html and f"item {lease.item_id}<" not in html
    assert 'data-testid="left-for-me"' in html and 'data-testid="project-progress"' in html
    assert "<time datetime=" in html and "localtime.js" in html


def _user(project, username):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def _to_first_review(client, project, target=None):
    """Skip the annotator's items until the queue serves a review item (``target`` when given)."""
    user = _user(project, "bob_annotator")
    while True:
        a = wb.queue_next(project=project, annotator=user)
        if a.item.kind == Item.Kind.EDIT_REVIEW and target in (None, a.item_id):
            return a
        wb.assignment_skip(project=project, annotator=user, item_id=a.item_id, reason="unsure")


def test_markup_in_an_edit_is_text(login, project, reviews):
    client = login("annotator")
    _to_first_review(client, project, target=reviews[2].pk)  # its edit carries <b>more</b>
    html = client.get(reverse("workbench", args=[project.slug])).content.decode()
    assert "&lt;b&gt;more&lt;/b&gt;" in html and "<b>more</b>" not in html


def test_no_js_submit_fix_then_error_then_htmx(login, project, reviews):
    client = login("annotator")
    a = _to_first_review(client, project)
    url = reverse("workbench-submit", args=[project.slug])
    edit_text = reviews[0].review_of.text
    # "fix" with the unchanged edit: refused, the form comes back with what was typed
    r = client.post(url, {"item": a.item_id, "idempotency_key": "k1", "edit_verdict": "fix", "edit_fix": edit_text})
    assert r.status_code == 422
    assert "accept the edit instead" in r.content.decode()
    # the prefilled box does not stop an accept: its text is read only with "fix"
    r = client.post(url, {"item": a.item_id, "idempotency_key": "k2", "edit_verdict": "fix",
                          "edit_fix": "Never mix cleaners.", "rationale": "shorter", "confidence": "4"},
                    headers={"HX-Request": "true"})
    assert r.status_code == 200 and "saved" in r.content.decode()
    ann = Annotation.objects.get(item_id=a.item_id)
    assert (ann.edit_verdict, ann.edit_fix.text, ann.confidence) == ("fix", "Never mix cleaners.", 4)
    r = client.post(url, {"item": a.item_id, "idempotency_key": "k2", "edit_verdict": "fix",
                          "edit_fix": "Never mix cleaners.", "rationale": "shorter", "confidence": "4"})
    assert r.status_code == 302  # a double submit: answered from the record
    assert Annotation.objects.filter(item_id=a.item_id).count() == 1
    assert Response.objects.filter(origin="human_edited").count() == 1


@pytest.mark.parametrize(("persona", "status"), [("researcher", 200), ("admin", 200), ("annotator", 404),
                                                   ("outsider", 404), ("anonymous", 302)])
def test_adjudication_of_a_review_item_is_for_researchers(login, project, reviews, persona, status):
    r = login(persona).get(reverse("adjudication-item", args=[project.slug, reviews[0].pk]))
    assert r.status_code in ((status,) if status != 404 else (403, 404))


def test_adjudication_shows_verdicts_per_rater_and_records_a_decision(login, project, reviews, annotator):
    a = _to_first_review(None, project)
    wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id,
                         judgment=__import__("annotation.judgments", fromlist=["Judgment"]).Judgment(
                             edit_verdict="fix", edit_fix="<i>my</i> fix"))
    client = login("researcher")
    url = reverse("adjudication-item", args=[project.slug, a.item_id])
    html = client.get(url).content.decode()
    assert "bob_annotator" in html and "&lt;i&gt;my&lt;/i&gt; fix" in html
    assert 'data-testid="outcome"><strong>fix</strong>' in html
    r = client.post(url, {"edit_verdict": "reject", "rationale": "adds a harm"})
    assert r.status_code == 302
    html = client.get(url).content.decode()
    assert "<strong>reject</strong> (decided by adjudication)" in html
    r = client.post(url, {"edit_verdict": ""})
    assert r.status_code == 422 and "Accept, reject or fix the edit." in r.content.decode()


def test_the_api_serves_a_review_item_and_takes_a_verdict(project, reviews, annotator):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(annotator)
    a = _to_first_review(None, project)
    body = client.post(reverse("api-annotate-next", args=[project.slug])).json()
    assert (body["item"], body["kind"], body["responses"]) == (a.item_id, "edit_review", [])
    assert body["edit"]["edit"] == {"id": reviews[0].review_of_id, "text": reviews[0].review_of.text}
    assert body["edit"]["direction"] == "improve"
    url = reverse("api-annotate-submit", args=[project.slug])
    r = client.post(url, {"item": a.item_id, "edit_verdict": "fix", "edit_fix": ""}, format="json")
    assert r.status_code == 400 and "edit_fix" in r.json()["errors"]
    r = client.post(url, {"item": a.item_id, "edit_verdict": "fix", "edit_fix": "Short fix."}, format="json")
    assert r.status_code in (200, 201), r.content
    ann = Annotation.objects.get(item_id=a.item_id)
    assert (ann.edit_verdict, ann.edit_fix.text) == ("fix", "Short fix.")
