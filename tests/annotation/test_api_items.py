"""/api/projects/<slug>/items/: what members see, and what annotators must never see."""
from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from tests.annotation.web_fixtures import (  # noqa: F401  (fixtures)
    XSS_SCRIPT,
    add_human_annotation,
    batch,
    import_records,
    item,
    personas,
    sample_records,
)

pytestmark = pytest.mark.django_db

# Anything here in an annotator's payload would leak other people's judgments, gold answers,
# imported source labels or (for blind judging) model names.
FORBIDDEN_FOR_ANNOTATORS = {"annotations", "annotation_count", "is_gold", "gold_answer", "metadata", "model_name"}


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def _all_keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(_all_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_all_keys(v) for v in value)) if value else set()
    return set()


def test_annotators_get_prompts_and_responses_but_no_judgments(annotator, researcher, item):
    # given: someone else's judgment of the item
    add_human_annotation(item=item, annotator=researcher, rationale="secret reasoning")
    api = _api(annotator)
    # when
    listing = api.get("/api/projects/demo/items/").json()
    detail = api.get(f"/api/projects/demo/items/{item.pk}/").json()
    # then
    assert listing["count"] == 3
    first = listing["results"][0]
    assert first["external_id"] == "q-0"
    assert [r["text"] for r in first["responses"]][1] == "Answer B0"
    for payload in (listing, detail):
        assert not (_all_keys(payload) & FORBIDDEN_FOR_ANNOTATORS), _all_keys(payload) & FORBIDDEN_FOR_ANNOTATORS
        assert "secret reasoning" not in json.dumps(payload)
        assert "unsafe" not in json.dumps(payload)  # neither the judgment nor the imported label


def test_researchers_see_annotations_and_metadata(researcher, annotator, item):
    # given
    add_human_annotation(item=item, annotator=annotator, rationale="because")
    api = _api(researcher)
    # when
    detail = api.get(f"/api/projects/demo/items/{item.pk}/").json()
    listing = api.get("/api/projects/demo/items/").json()
    # then
    assert detail["metadata"] == {"source_label": "unsafe"}
    assert [r["model_name"] for r in detail["responses"]] == ["model-a", "model-b"]
    [annotation] = detail["annotations"]
    assert annotation["annotator"] == "bob_annotator" and annotation["rationale"] == "because"
    assert annotation["prompt_label"] == "unsafe" and annotation["taxonomy_version"] == "aegis-2.0 v1"
    counts = {r["id"]: r["annotation_count"] for r in listing["results"]}
    assert counts[item.pk] == 1 and sorted(counts.values()) == [0, 0, 1]


def test_it_paginates(researcher, item):
    page = _api(researcher).get("/api/projects/demo/items/?limit=2&offset=2").json()
    assert page["count"] == 3 and len(page["results"]) == 1 and page["previous"]


def test_model_text_comes_back_verbatim_as_json_and_escaped_in_the_browsable_api(researcher, item):
    # given
    client = _api(researcher)
    # when: JSON keeps the exact text
    body = client.get(f"/api/projects/demo/items/{item.pk}/").json()
    # then
    assert XSS_SCRIPT in body["prompt"][0]["content"]
    # when: the HTML browsable API renders it
    html = client.get(f"/api/projects/demo/items/{item.pk}/", HTTP_ACCEPT="text/html").content.decode()
    # then: escaped, never live
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x onerror" not in html and '<img src=x onerror="alert(2)">' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_item_of_another_project_is_404(researcher, admin_user, other_project, item):
    assert _api(researcher).get(f"/api/projects/other/items/{item.pk}/").status_code == 404
    assert _api(admin_user).get(f"/api/projects/other/items/{item.pk}/").status_code == 404


@pytest.mark.parametrize("who", ["annotator", "researcher"])
def test_item_list_query_count_does_not_grow_with_items(who, personas, project, researcher, tmp_path, django_assert_num_queries):
    # given: 2 items, then 12, read with a token (as scripts do)
    from knox.models import AuthToken

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=personas[who])[1]}")
    import_records(project, tmp_path, sample_records(2, prefix="a"), user=researcher, name="a.jsonl")
    # token+user, the user's other tokens (knox drops expired ones), project, groups, membership role,
    # count, items, responses (researchers get annotation counts inside the items query)
    with django_assert_num_queries(6):
        api.get("/api/projects/demo/items/")
    import_records(project, tmp_path, sample_records(10, prefix="b"), user=researcher, name="b.jsonl")
    with django_assert_num_queries(6):
        response = api.get("/api/projects/demo/items/")
    assert response.json()["count"] == 12
