"""The Content-Security-Policy header: every HTML page of Tribunal's (all may show model text)."""
from __future__ import annotations

import pytest

from annotation.middleware import CSP
from tests.annotation.workbench_fixtures import make_items


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/projects/demo/",
        "/projects/demo/import/",
        "/annotate/demo/",
        "/annotate/demo/adjudicate/",
        "/projects/demo/jury/",
        "/projects/demo/exports/",
    ],
)
def test_every_page_that_shows_model_text_has_the_policy(client, researcher, project, tmp_path, path):
    # given
    make_items(project, tmp_path, 1)
    client.force_login(researcher)
    # when
    response = client.get(path)
    # then
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP.split("script-src", 1)[1].split(";")[0]


def test_the_login_page_has_it_too(client):
    assert client.get("/login/").headers["Content-Security-Policy"] == CSP


def test_json_carries_no_policy_and_the_admin_and_api_docs_carry_it(client, admin_user, project):
    client.force_login(admin_user)
    assert "Content-Security-Policy" not in client.get("/api/projects/").headers  # not a page
    assert "script-src 'self'" in client.get("/admin/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in client.get("/api/docs/").headers["Content-Security-Policy"]
