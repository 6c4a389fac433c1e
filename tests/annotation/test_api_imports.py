"""/api/projects/<slug>/imports/: uploading through the API and following a batch."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import ImportBatch, Item
from tests.annotation.web_fixtures import batch, item, personas, sample_records, write_jsonl  # noqa: F401

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_a_researcher_imports_a_file_and_follows_the_batch(researcher, project, tmp_path):
    # given
    path = write_jsonl(tmp_path / "in.jsonl", sample_records(4))
    api = _api(researcher)
    # when
    with path.open("rb") as fh:
        response = api.post("/api/projects/demo/imports/", {"file": fh, "format": "tribunal"}, format="multipart")
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "done" and body["items_created"] == 4 and body["responses_created"] == 8
    assert body["detected_format"] == "tribunal" and body["source_name"] == "in.jsonl"
    assert body["errors"] == [] and body["created_by"] == "rita_researcher"
    assert response["Location"] == body["url"] == f"/api/projects/demo/imports/{body['id']}/"
    assert Item.objects.filter(project=project).count() == 4
    # when following it
    detail = api.get(body["url"]).json()
    listing = api.get("/api/projects/demo/imports/").json()
    # then
    assert detail["id"] == body["id"] and detail["progress"] == 1.0
    assert [b["id"] for b in listing] == [body["id"]] and "errors" not in listing[0]


def test_a_bad_file_fails_with_every_error_by_line_and_stores_nothing(researcher, project, tmp_path):
    # given: line 2 is not JSON, line 3 has no responses
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"prompt": "fine", "responses": ["a", "b"]}\n{not json\n{"prompt": "no responses"}\n', encoding="utf-8"
    )
    # when
    with path.open("rb") as fh:
        response = _api(researcher).post("/api/projects/demo/imports/", {"file": fh}, format="multipart")
    # then
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "failed"
    assert sorted(e["line"] for e in body["errors"]) == [2, 3]
    assert all(e["error"] for e in body["errors"])
    assert Item.objects.filter(project=project).count() == 0


def test_it_requires_a_file_and_a_known_format(researcher, project, tmp_path):
    api = _api(researcher)
    missing = api.post("/api/projects/demo/imports/", {"format": "auto"}, format="multipart")
    assert missing.status_code == 400 and "file" in missing.json()
    path = write_jsonl(tmp_path / "in.jsonl", sample_records(1))
    with path.open("rb") as fh:
        unknown = api.post("/api/projects/demo/imports/", {"file": fh, "format": "xml"}, format="multipart")
    assert unknown.status_code == 400 and "format" in unknown.json()
    assert ImportBatch.objects.count() == 0


def test_a_batch_is_not_reachable_through_another_project(admin_user, batch, other_project):
    assert _api(admin_user).get(f"/api/projects/other/imports/{batch.pk}/").status_code == 404
    assert _api(admin_user).get(f"/api/projects/demo/imports/{batch.pk}/").status_code == 200
