"""Workbench pages and API: the permission matrix, the no-JS and htmx flows, escaping, blindness."""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Annotation, Assignment, Membership, Project
from annotation.workbench import selectors
from annotation.workbench import services as wb
from tests.annotation.workbench_fixtures import full_judgment, make_items

pytestmark = pytest.mark.django_db

XSS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "[click me](javascript:window.__xss=1)",
    '<a href="javascript:window.__xss=1">link</a>',
]


def client_for(user) -> Client:
    c = Client()
    if user is not None:
        c.force_login(user)
    return c


@pytest.fixture
def personas(admin_user, researcher, annotator, outsider, project):
    return {"admin": admin_user, "researcher": researcher, "annotator": annotator, "outsider": outsider, "anonymous": None}


@pytest.fixture
def world(project, tmp_path, personas):
    items = make_items(project, tmp_path, 6)
    return project, items


def endpoints(project, item):
    s = project.slug
    annotate = {"admin", "researcher", "annotator"}
    adjudicate = {"admin", "researcher"}
    return [
        ("page", "get", reverse("workbench", args=[s]), {}, annotate),
        ("page", "post", reverse("workbench-submit", args=[s]), {"item": item.pk}, annotate),
        ("page", "post", reverse("workbench-skip", args=[s]), {"item": item.pk, "reason": "unsure"}, annotate),
        ("page", "post", reverse("workbench-undo", args=[s]), {}, annotate),
        ("page", "get", reverse("adjudication", args=[s]), {}, adjudicate),
        ("page", "get", reverse("adjudication-item", args=[s, item.pk]), {}, adjudicate),
        ("page", "post", reverse("adjudication-item", args=[s, item.pk]), {}, adjudicate),
        ("api", "post", reverse("api-annotate-next", args=[s]), {}, annotate),
        ("api", "post", reverse("api-annotate-submit", args=[s]), {"item": item.pk}, annotate),
        ("api", "post", reverse("api-annotate-skip", args=[s]), {"item": item.pk, "reason": "unsure"}, annotate),
        ("api", "post", reverse("api-annotate-flag", args=[s]), {"item": item.pk, "kind": "broken"}, annotate),
        ("api", "post", reverse("api-annotate-undo", args=[s]), {}, annotate),
        ("api", "get", reverse("api-adjudication", args=[s]), {}, adjudicate),
        ("api", "post", reverse("api-adjudication-record", args=[s, item.pk]), {}, adjudicate),
    ]


@pytest.mark.parametrize("persona", ["admin", "researcher", "annotator", "outsider", "anonymous"])
def test_permission_matrix(world, personas, persona):
    # given
    project, items = world
    c = client_for(personas[persona])
    for kind, method, url, data, allowed in endpoints(project, items[0]):
        # when
        if kind == "api":
            resp = getattr(c, method)(url, data, content_type="application/json") if method == "post" else c.get(url)
        else:
            resp = getattr(c, method)(url, data)
        # then
        where = f"{persona} {method.upper()} {url}"
        if persona == "anonymous":
            expected = {302} if kind == "page" else {401, 403}
            assert resp.status_code in expected, where
            if kind == "page":
                assert resp.url.startswith(reverse("login")), where
        elif persona in allowed:
            assert resp.status_code not in (401, 403, 404, 405, 500), f"{where}: {resp.status_code}"
            if resp.status_code == 302:  # a success redirect, not the login page
                assert not resp.url.startswith(reverse("login")), where
        else:
            assert resp.status_code == 404, f"{where}: {resp.status_code}"


def test_it_rejects_other_projects_items(world, other_project, annotator, tmp_path):
    # given: an item of a project the annotator is not in
    foreign = make_items(other_project, tmp_path, 1, prefix="x")[0]
    project, _ = world
    c = client_for(annotator)
    # when
    resp = c.post(reverse("api-annotate-submit", args=[project.slug]), {"item": foreign.pk, "ranking": [[1]]}, content_type="application/json")
    # then
    assert resp.status_code == 409
    assert c.get(reverse("workbench", args=[other_project.slug])).status_code == 404


def _form_for(page_html: str, assignment: Assignment, project: Project, *, key: str = "k") -> dict:
    order = assignment.shown_order
    data = {"item": assignment.item_id, "idempotency_key": key, "rationale": "because", "confidence": "3"}
    for rank, rid in enumerate(order, start=1):
        data[f"rank-{rid}"] = str(min(rank, 2))  # the last two tie
        data[f"label-{rid}"] = "safe"
    return data


def test_the_form_works_without_javascript(world, annotator):
    # given
    project, _ = world
    c = client_for(annotator)
    page = c.get(reverse("workbench", args=[project.slug]))
    assert page.status_code == 200
    a = Assignment.objects.get(annotator=annotator, status="active")
    data = _form_for(page.content.decode(), a, project)
    rid = a.shown_order[0]
    data[f"label-{rid}"] = "unsafe"
    data[f"cat-{rid}"] = ["S1", "S3"]
    data["principle"] = [project.principle_set.principles.first().pk]
    # when
    resp = c.post(reverse("workbench-submit", args=[project.slug]), data)
    # then: redirect back to the workbench, with a confirmation and the next item
    assert resp.status_code == 302 and resp.url == reverse("workbench", args=[project.slug])
    ann = Annotation.objects.get(annotator=annotator)
    assert ann.ranking == [[a.shown_order[0]], a.shown_order[1:]]
    assert ann.response_safety.get(response_id=rid).categories == ["S1", "S3"]
    nxt = c.get(resp.url)
    assert "saved" in nxt.content.decode()
    assert Assignment.objects.get(annotator=annotator, status="active").item_id != a.item_id


def test_htmx_submit_swaps_in_the_next_item_and_a_double_click_stores_one(world, annotator):
    project, _ = world
    c = client_for(annotator)
    c.get(reverse("workbench", args=[project.slug]))
    a = Assignment.objects.get(annotator=annotator, status="active")
    data = _form_for("", a, project, key="double")
    url = reverse("workbench-submit", args=[project.slug])
    first = c.post(url, data, HTTP_HX_REQUEST="true")
    second = c.post(url, data, HTTP_HX_REQUEST="true")
    html = first.content.decode()
    assert first.status_code == 200 and 'id="task"' in html and "<html" not in html
    assert f"{selectors.item_place(a.item)} saved" in html
    assert second.status_code == 200 and "already saved" in second.content.decode()
    assert Annotation.objects.filter(annotator=annotator).count() == 1


def test_an_invalid_form_comes_back_with_what_was_typed(world, annotator):
    project, _ = world
    c = client_for(annotator)
    c.get(reverse("workbench", args=[project.slug]))
    a = Assignment.objects.get(annotator=annotator, status="active")
    data = _form_for("", a, project)
    data.pop(f"rank-{a.shown_order[0]}")
    data["rationale"] = "my careful reasoning that must not be lost"
    data[f"label-{a.shown_order[1]}"] = "unsafe"  # and no category
    resp = c.post(reverse("workbench-submit", args=[project.slug]), data)
    html = resp.content.decode()
    assert resp.status_code == 422
    assert "my careful reasoning that must not be lost" in html
    # every error is in the banner, responses named by their letter, never by database id
    banner = html.split('data-testid="errors"', 1)[1].split("</div>", 1)[0]
    assert "Response A has no rank; rank every response." in banner
    assert "Response B: Unsafe needs at least one category." in banner
    assert "[" not in banner  # no list of database ids such as "[5, 7]"
    # it links to the cards, which are outlined
    assert 'href="#response-A"' in banner and 'href="#response-B"' in banner
    assert html.count("response-card has-error") == 2
    assert not Annotation.objects.exists()


def test_a_stale_form_says_so_and_keeps_the_text(world, annotator, personas):
    from datetime import timedelta

    from django.utils import timezone

    project, _ = world
    Project.objects.filter(pk=project.pk).update(overlap=1)
    project.refresh_from_db()
    c = client_for(annotator)
    c.get(reverse("workbench", args=[project.slug]))
    a = Assignment.objects.get(annotator=annotator, status="active")
    # the lease runs out and the researcher is handed the item meanwhile
    Assignment.objects.filter(pk=a.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = wb.queue_next(project=project, annotator=personas["researcher"])
    assert taken.item_id == a.item_id
    data = _form_for("", a, project)
    data["rationale"] = "typed before the lease ran out"
    resp = c.post(reverse("workbench-submit", args=[project.slug]), data)
    html = resp.content.decode()
    assert resp.status_code == 409
    assert "went to another annotator" in html and "typed before the lease ran out" in html
    assert not Annotation.objects.exists()


def test_model_text_and_guidelines_are_escaped_or_sanitised(project, tmp_path, annotator):
    Project.objects.filter(pk=project.pk).update(guidelines="# Rules\n\n" + "\n\n".join(XSS) + "\n\n**bold**")
    make_items(project, tmp_path, 1, prompt=" ".join(XSS), texts=XSS[:3])
    c = client_for(annotator)
    resp = c.get(reverse("workbench", args=[project.slug]))
    html = resp.content.decode()
    assert "<script>window.__xss" not in html
    # model text is Markdown without raw HTML: the tags read as text (escaped), never as elements
    assert "<img" not in html and "&lt;img src=x onerror=" in html
    assert not re.search(r"<a [^>]*href=\"javascript:", html) and not re.search(r"<[a-z]+ [^>]*onerror=", html)
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "<strong>bold</strong>" in html  # markdown still renders
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_annotators_never_see_other_judgments_unless_the_jury_suggestion_is_on(world, annotator, researcher):
    project, items = world
    # another annotator's judgment and a jury verdict on the item the annotator will get
    other = wb.queue_next(project=project, annotator=researcher)
    wb.annotation_submit(
        project=project, annotator=researcher, item_id=other.item_id,
        judgment=full_judgment(project, other.shown_order, rationale="SECRET-HUMAN-RATIONALE"),
    )
    Annotation(project=project, item_id=other.item_id, source="jury", source_detail="panel-7",
               prompt_label="unsafe", prompt_categories=["S1"], taxonomy_version=project.taxonomy_version,
               rationale="SECRET-JURY").save()
    c = client_for(annotator)
    page = c.get(reverse("workbench", args=[project.slug])).content.decode()
    api = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    assert api["item"] == other.item_id
    for text in (page, str(api)):
        assert "SECRET" not in text and "panel-7" not in text
    assert api["jury_suggestion"] is None
    # when the project turns the suggestion on
    Project.objects.filter(pk=project.pk).update(show_jury_suggestion=True)
    page = c.get(reverse("workbench", args=[project.slug])).content.decode()
    api = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    assert "Jury suggestion" in page and "panel-7" in page and "SECRET-HUMAN" not in page
    assert api["jury_suggestion"]["source"] == "jury: panel-7" and api["jury_suggestion"]["prompt_label"] == "unsafe"


def test_api_cycle_next_submit_replay_undo(world, annotator):
    project, _ = world
    c = client_for(annotator)
    nxt = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    ids = [r["id"] for r in nxt["responses"]]
    body = {
        "item": nxt["item"], "idempotency_key": "api-1", "ranking": [[i] for i in ids],
        "response_safety": [{"response": i, "label": "safe"} for i in ids], "confidence": 5,
    }
    url = reverse("api-annotate-submit", args=[project.slug])
    r1 = c.post(url, body, content_type="application/json")
    r2 = c.post(url, body, content_type="application/json")
    assert r1.status_code == 201 and r2.status_code == 200 and r2.json()["replayed"]
    bad = c.post(url, {**body, "idempotency_key": "api-2", "ranking": [[ids[0]]]}, content_type="application/json")
    assert bad.status_code == 409  # already submitted
    undo = c.post(reverse("api-annotate-undo", args=[project.slug]))
    assert undo.status_code == 200 and undo.json()["item"] == nxt["item"]
    r3 = c.post(url, {**body, "idempotency_key": "api-3", "ranking": [[ids[0]]]}, content_type="application/json")
    assert r3.status_code == 400 and "ranking" in r3.json()["errors"]


def test_adjudication_page_lists_by_disagreement_and_records_a_decision(world, researcher, admin_user, personas):
    project, items = world
    from annotation.workbench.judgments import ResponseLabel
    from tests.annotation.workbench_fixtures import make_annotators

    u1, u2 = make_annotators(project, 2)
    for u, label in ((u1, "safe"), (u2, "unsafe")):
        a = wb.queue_next(project=project, annotator=u)
        labels = {rid: ResponseLabel("safe") for rid in a.shown_order}
        labels[a.shown_order[0]] = ResponseLabel(label, ("S1",) if label == "unsafe" else ())
        wb.annotation_submit(project=project, annotator=u, item_id=a.item_id,
                             judgment=full_judgment(project, a.shown_order, response_labels=labels, rationale=f"why {u}"))
    c = client_for(researcher)
    listing = c.get(reverse("adjudication", args=[project.slug])).content.decode()
    place = selectors.item_place(a.item)
    assert f">{place}</a>" in listing
    detail = c.get(reverse("adjudication-item", args=[project.slug, a.item_id])).content.decode()
    assert f"why {u1}" in detail and f"why {u2}" in detail and " ms" in detail
    order = list(project.items.get(pk=a.item_id).responses.order_by("position").values_list("pk", flat=True))
    data = {f"rank-{rid}": str(i + 1) for i, rid in enumerate(order)}
    data.update({f"label-{rid}": "safe" for rid in order})
    resp = c.post(reverse("adjudication-item", args=[project.slug, a.item_id]), data)
    assert resp.status_code == 302
    decision = Annotation.objects.get(source="adjudication")
    assert decision.annotator == researcher and decision.item_id == a.item_id
    assert Membership.objects.filter(project=project, user=personas["annotator"]).exists()
