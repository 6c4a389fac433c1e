"""/api/projects/: listing what the caller may see, creating, and project detail."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import Membership, Project
from tests.annotation.web_fixtures import batch, item, personas  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_it_lists_only_visible_projects_with_the_callers_role(researcher, annotator, outsider, admin_user, project, other_project):
    assert [(p["slug"], p["role"]) for p in _api(researcher).get("/api/projects/").json()] == [("demo", "researcher")]
    assert [(p["slug"], p["role"]) for p in _api(annotator).get("/api/projects/").json()] == [("demo", "annotator")]
    assert _api(outsider).get("/api/projects/").json() == []
    assert {p["slug"]: p["role"] for p in _api(admin_user).get("/api/projects/").json()} == {"demo": "admin", "other": "admin"}


def test_a_researcher_creates_a_project_and_becomes_its_researcher(researcher, presets):
    # when
    response = _api(researcher).post(
        "/api/projects/",
        {"slug": "fresh", "name": "Fresh", "taxonomy": "llama-guard-3", "principle_set": "tribunal-hhh",
         "mode": "pairwise", "overlap": 3, "guidelines": "# Be kind"},
        format="json",
    )
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "fresh" and body["role"] == "researcher" and body["taxonomy"] == "llama-guard-3"
    project = Project.objects.get(slug="fresh")
    assert project.mode == "pairwise" and project.overlap == 3 and project.created_by == researcher
    assert project.taxonomy_version == presets["taxonomies"]["llama-guard-3"]
    assert Membership.objects.get(project=project, user=researcher).role == "researcher"


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"slug": "demo", "name": "Dup", "taxonomy": "aegis-2.0"}, "slug"),
        ({"slug": "bad slug!", "name": "X", "taxonomy": "aegis-2.0"}, "slug"),
        ({"slug": "x1", "name": "X", "taxonomy": "no-such"}, "taxonomy"),
        ({"slug": "x2", "name": "X", "taxonomy": "aegis-2.0", "taxonomy_version": 99}, "taxonomy"),
        ({"slug": "x3", "name": "X", "taxonomy": "aegis-2.0", "overlap": 0}, "overlap"),
        ({"slug": "x4", "name": "X", "taxonomy": "aegis-2.0", "mode": "chaos"}, "mode"),
        ({"slug": "x5", "name": "X", "taxonomy": "aegis-2.0", "principle_set": "nope"}, "principle_set"),
    ],
)
def test_it_rejects_bad_project_input_with_a_clear_error(researcher, project, payload, field):
    # given
    before = Project.objects.count()
    # when
    response = _api(researcher).post("/api/projects/", payload, format="json")
    # then
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert Project.objects.count() == before


def test_it_refuses_a_draft_taxonomy_version(researcher, presets):
    from annotation import services

    draft = services.taxonomy_version_new_draft(taxonomy=presets["taxonomies"]["aegis-2.0"].taxonomy)
    response = _api(researcher).post(
        "/api/projects/", {"slug": "d", "name": "D", "taxonomy": "aegis-2.0", "taxonomy_version": draft.version},
        format="json",
    )
    assert response.status_code == 400
    assert "published" in str(response.json())


def test_project_detail_counts_judgments_only_for_researchers(researcher, annotator, batch):
    research = _api(researcher).get("/api/projects/demo/").json()
    assert research["counts"] == {"items": 3, "responses": 6, "annotations": 0, "human_annotations": 0, "imports": 1}
    member = _api(annotator).get("/api/projects/demo/").json()
    assert member["counts"] == {"items": 3, "responses": 6}
    assert member["role"] == "annotator" and member["taxonomy"] == "aegis-2.0"
