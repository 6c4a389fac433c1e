"""/api/taxonomies/ and /api/principle-sets/."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation import services
from annotation.models import Taxonomy

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_it_lists_taxonomies_with_their_versions(annotator):
    # given a draft next to the published preset
    aegis = services.taxonomy_version_new_draft(taxonomy=Taxonomy.objects.get(slug="aegis-2.0"))
    # when
    body = _api(annotator).get("/api/taxonomies/").json()
    # then
    by_slug = {t["slug"]: t for t in body}
    assert {"aegis-2.0", "llama-guard-3"} <= set(by_slug)
    versions = by_slug["aegis-2.0"]["versions"]
    assert [(v["version"], v["status"]) for v in versions] == [(aegis.version, "draft"), (1, "published")]
    assert versions[1]["url"] == "/api/taxonomies/aegis-2.0/versions/1/"


def test_a_version_lists_its_categories(annotator):
    body = _api(annotator).get("/api/taxonomies/aegis-2.0/versions/1/").json()
    assert body["status"] == "published" and body["taxonomy"] == "aegis-2.0"
    codes = [c["code"] for c in body["categories"]]
    assert len(codes) == len(set(codes)) >= 12
    assert _api(annotator).get("/api/taxonomies/aegis-2.0/versions/42/").status_code == 404


def test_it_lists_principle_sets(annotator):
    [pset] = _api(annotator).get("/api/principle-sets/").json()
    assert pset["slug"] == "tribunal-hhh"
    assert {p["group"] for p in pset["principles"]} == {"helpfulness", "honesty", "harmlessness"}


def test_list_query_counts_are_constant(annotator, django_assert_num_queries):
    api = _api(annotator)
    with django_assert_num_queries(2):  # taxonomies, versions
        api.get("/api/taxonomies/")
    with django_assert_num_queries(2):  # sets, principles
        api.get("/api/principle-sets/")
