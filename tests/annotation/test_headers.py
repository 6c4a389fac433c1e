"""Response headers every page and answer carries (issue: hardening, headers)."""
from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_logged_in_pages_and_json_are_never_cached(project, annotator, researcher):
    c = Client()
    c.force_login(researcher)
    for url in ("/", f"/projects/{project.slug}/",
                "/api/projects/"):
        response = c.get(url)
        assert response.status_code == 200, url
        cache = response.headers.get("Cache-Control", "")
        assert "private" in cache and "no-store" in cache, (url, cache)


def test_an_anonymous_json_error_is_not_cached_either(client):
    answer = client.get("/api/projects/")
    assert answer.status_code == 401 and "no-store" in answer.headers.get("Cache-Control", "")
    login = client.get("/login/")
    assert login.status_code == 200  # Django's own never_cache on the login view is kept as it is
    assert "no-store" in login.headers.get("Cache-Control", "")
