"""Hostile and malformed input gets a 400 with a field error, never a 500 (issue: hardening 1, 4).

The shapes an outside probe found are pinned as plain tests; hypothesis then throws arbitrary JSON
at the two parsers those shapes went through (the export options and the judgment body), bounded
in examples, with "no server error" as the assertion."""
from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotation.judgments import MAX_RESPONSES, ranking_gaps
from exports.options import ExportOptionsError, build_options
from tests.annotation.workbench_fixtures import make_items

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
OPTION_NAMES = ["format", "categories", "split", "outputs", "seed", "min_annotators", "chunk_size", "min_agreement",
                "date_from", "include_margin", "tie_policy", "source", "min_jury_confidence"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(OPTION_NAMES), JSON, max_size=6), st.sampled_from(["dpo", "kto", "guard-aegis"]))
def test_export_options_either_parse_or_say_what_is_wrong(raw, fmt):
    raw.setdefault("format", fmt)
    try:
        build_options(raw, category_codes={"S1", "S2"})
    except ExportOptionsError:
        pass  # a clear, reported error: what the API answers with a 400


def test_the_rankings_rule_is_linear_in_the_size_of_the_body():
    # 30,000 tie groups naming one response: every duplicate found, in one pass (seen.count was quadratic)
    gaps = ranking_gaps([[1]] * 30_000, [1, 2])
    assert gaps.duplicated == [1] and gaps.missing == [2]


@pytest.mark.django_db
class TestOverTheWire:
    @pytest.fixture
    def client_(self, project, annotator, tmp_path):
        make_items(project, tmp_path, 1)
        c = Client()
        c.force_login(annotator)
        return c

    def test_a_30000_group_ranking_is_refused_by_its_size(self, project, client_):
        payload = client_.post(reverse("api-annotate-next", args=[project.slug])).json()
        body = {"item": payload["item"], "ranking": [[payload["responses"][0]["id"]]] * 30_000}
        r = client_.post(reverse("api-annotate-submit", args=[project.slug]), body, content_type="application/json")
        assert r.status_code == 400 and r.json()["ranking"] == [f"At most {MAX_RESPONSES} entries."]
        for name in ("prompt_categories", "principles", "response_safety"):
            r = client_.post(reverse("api-annotate-submit", args=[project.slug]),
                             {"item": payload["item"], name: [1] * 5000}, content_type="application/json")
            assert r.status_code == 400 and name in r.json(), name

    @pytest.mark.parametrize("item", ["²", "9" * 5000, "-1", " 1"])
    def test_a_form_naming_a_strange_item_gets_a_400(self, project, client_, item):
        r = client_.post(reverse("workbench-submit", args=[project.slug]), {"item": item})
        assert r.status_code == 400
        r = client_.post(reverse("workbench-skip", args=[project.slug]), {"item": item, "reason": "unsure"})
        assert r.status_code == 422  # the workbench page again, with the reason

    @pytest.mark.parametrize("body", [
        [], "dpo", [{"format": "dpo"}],
        {"format": "dpo", "categories": 5}, {"format": "dpo", "split": 0.5}, {"format": "dpo", "outputs": {"a": 1}},
        {"format": "dpo", "seed": 1e400}, {"format": "dpo", "min_annotators": 1e400},
        {"format": "dpo", "chunk_size": 1e400}, {"format": "dpo", "seed": 2.5}, {"format": "dpo", "min_agreement": True},
    ])
    def test_export_requests_of_the_wrong_shape_get_a_400(self, project, researcher, body):
        c = Client()
        c.force_login(researcher)
        r = c.post(f"/api/projects/{project.slug}/exports/", json.dumps(body).replace("Infinity", "1e400"),
                   content_type="application/json")
        assert r.status_code == 400, (body, r.content[:300])
        assert r.json()["code"] and ("options" in r.json() or "format" in r.json() or "detail" in r.json())


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=st.dictionaries(
    st.sampled_from(["item", "ranking", "pair_choice", "pair_strength", "prompt_label", "prompt_categories",
                     "response_safety", "principles", "confidence", "rationale", "idempotency_key"]),
    JSON, max_size=6,
))
def test_no_judgment_body_makes_a_server_error(project, annotator, body):
    c = Client()
    c.force_login(annotator)
    r = c.post(reverse("api-annotate-submit", args=[project.slug]), json.dumps(body, allow_nan=True),
               content_type="application/json")
    assert r.status_code < 500, (body, r.content[:300])


def test_the_form_parser_bounds_its_lists_too():
    from django.http import QueryDict

    from annotation.judgments import MAX_CATEGORIES, MAX_PRINCIPLES
    from annotation.workbench.forms import judgment_from_post

    data = QueryDict(mutable=True)
    data.setlist("cat-7", ["S1"] * (MAX_CATEGORIES + 1))
    data["label-7"] = "unsafe"
    data.setlist("principle", ["1"] * (MAX_PRINCIPLES + 1))
    data.setlist("prompt_cat", ["S1"] * (MAX_CATEGORIES + 1))
    judgment, errors = judgment_from_post(data, response_ids=[7], mode="safety")
    assert set(errors) == {"label-7", "principles", "prompt_label"}
    assert judgment.response_labels == {} and judgment.principles == () and judgment.prompt_categories == ()
