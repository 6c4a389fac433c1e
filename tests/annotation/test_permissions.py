"""Who may reach what: every page and API endpoint of the core app × every persona, with the
exact status code. Personas: admin, researcher (member, researcher role), annotator (member),
outsider (an annotator who is not a member) and anonymous.

Non-members get 404 (never 403) on project data; annotators get 404 on management pages;
anonymous browsers are sent to the login page and anonymous API calls get 401 with a
``WWW-Authenticate: Token`` challenge.
"""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.annotation.web_fixtures import (  # noqa: F401  (fixtures)
    batch,
    client_for,
    item,
    personas,
    sample_records,
    write_jsonl,
)

A, R, N, O, X = "admin", "researcher", "annotator", "outsider", "anonymous"


def _codes(admin, researcher, annotator, outsider, anonymous) -> dict[str, int]:
    return {A: admin, R: researcher, N: annotator, O: outsider, X: anonymous}


LOGIN = 302  # anonymous browser: redirect to /login/?next=...

# (name, method, url template, expected codes). {slug} is "demo" (all personas but the outsider
# are members) or "other" (a project only the admin can see).
PAGES = [
    ("dashboard", "get", "/", _codes(200, 200, 200, 200, LOGIN)),
    ("project page", "get", "/projects/demo/", _codes(200, 200, 200, 404, LOGIN)),
    ("other project page", "get", "/projects/other/", _codes(200, 404, 404, 404, LOGIN)),
    ("missing project page", "get", "/projects/nope/", _codes(404, 404, 404, 404, LOGIN)),
    ("import page", "get", "/projects/demo/import/", _codes(200, 200, 404, 404, LOGIN)),
    ("other import page", "get", "/projects/other/import/", _codes(200, 404, 404, 404, LOGIN)),
    ("import batch page", "get", "/projects/demo/imports/{batch}/", _codes(200, 200, 404, 404, LOGIN)),
    ("batch through other project", "get", "/projects/other/imports/{batch}/", _codes(404, 404, 404, 404, LOGIN)),
    ("admin index", "get", "/admin/", _codes(200, 302, 302, 302, 302)),
    ("admin items", "get", "/admin/annotation/item/", _codes(200, 302, 302, 302, 302)),
    ("admin users", "get", "/admin/auth/user/", _codes(200, 302, 302, 302, 302)),
]

API = [
    ("projects list", "get", "/api/projects/", _codes(200, 200, 200, 200, 401)),
    ("project detail", "get", "/api/projects/demo/", _codes(200, 200, 200, 404, 401)),
    ("other project detail", "get", "/api/projects/other/", _codes(200, 404, 404, 404, 401)),
    ("items", "get", "/api/projects/demo/items/", _codes(200, 200, 200, 404, 401)),
    ("other items", "get", "/api/projects/other/items/", _codes(200, 404, 404, 404, 401)),
    ("item detail", "get", "/api/projects/demo/items/{item}/", _codes(200, 200, 200, 404, 401)),
    ("item through other project", "get", "/api/projects/other/items/{item}/", _codes(404, 404, 404, 404, 401)),
    ("taxonomies", "get", "/api/taxonomies/", _codes(200, 200, 200, 200, 401)),
    ("taxonomy version", "get", "/api/taxonomies/aegis-2.0/versions/1/", _codes(200, 200, 200, 200, 401)),
    ("principle sets", "get", "/api/principle-sets/", _codes(200, 200, 200, 200, 401)),
    ("imports list", "get", "/api/projects/demo/imports/", _codes(200, 200, 404, 404, 401)),
    ("other imports list", "get", "/api/projects/other/imports/", _codes(200, 404, 404, 404, 401)),
    ("import detail", "get", "/api/projects/demo/imports/{batch}/", _codes(200, 200, 404, 404, 401)),
    ("schema", "get", "/api/schema/", _codes(200, 200, 200, 200, 200)),
    ("docs", "get", "/api/docs/", _codes(200, 200, 200, 200, 200)),
]

CASES = [
    pytest.param(name, method, url, persona, codes[persona], id=f"{name}-{persona}")
    for name, method, url, codes in PAGES + API
    for persona in codes
]


@pytest.mark.django_db
@pytest.mark.parametrize("name,method,url,persona,expected", CASES)
def test_each_persona_gets_exactly_the_expected_status(
    name, method, url, persona, expected, personas, other_project, batch, item
):
    # given
    client = client_for(personas[persona])
    # when
    response = getattr(client, method)(url.format(batch=batch.pk, item=item.pk))
    # then
    assert response.status_code == expected, f"{name} as {persona}: {response.status_code}"
    if url.startswith("/admin/") and expected == 302:
        assert response["Location"].startswith("/admin/login/")
    elif persona == X and expected == LOGIN:
        assert response["Location"].startswith(reverse("login") + "?next=")


WRITE_CASES = [
    pytest.param(persona, code, id=persona)
    for persona, code in _codes(201, 201, 403, 403, 401).items()
]


@pytest.mark.django_db
@pytest.mark.parametrize("persona,expected", WRITE_CASES)
def test_only_researchers_and_admins_create_projects(persona, expected, personas, presets):
    # given
    client = client_for(personas[persona])
    # when
    response = client.post(
        "/api/projects/",
        {"slug": f"new-{persona}", "name": "New", "taxonomy": "aegis-2.0", "mode": "pairwise"},
        content_type="application/json",
    )
    # then
    assert response.status_code == expected, response.content


IMPORT_CASES = [
    pytest.param(persona, slug, code, id=f"{slug}-{persona}")
    for slug, codes in (
        ("demo", _codes(201, 201, 404, 404, 401)),
        ("other", _codes(201, 404, 404, 404, 401)),
    )
    for persona, code in codes.items()
]


@pytest.mark.django_db
@pytest.mark.parametrize("persona,slug,expected", IMPORT_CASES)
def test_only_project_researchers_and_admins_import_through_the_api(
    persona, slug, expected, personas, project, other_project, tmp_path
):
    # given
    client = client_for(personas[persona])
    path = write_jsonl(tmp_path / "up.jsonl", sample_records(2, prefix=persona))
    # when
    with path.open("rb") as fh:
        response = client.post(f"/api/projects/{slug}/imports/", {"file": fh, "format": "auto"})
    # then
    assert response.status_code == expected, response.content
    created = project.items.count() if slug == "demo" else other_project.items.count()
    assert created == (2 if expected == 201 else 0)


UPLOAD_CASES = [
    pytest.param(persona, code, id=persona) for persona, code in _codes(302, 302, 404, 404, LOGIN).items()
]


@pytest.mark.django_db
@pytest.mark.parametrize("persona,expected", UPLOAD_CASES)
def test_only_project_researchers_and_admins_upload_in_the_browser(persona, expected, personas, project, tmp_path):
    # given
    client = client_for(personas[persona])
    path = write_jsonl(tmp_path / "up.jsonl", sample_records(2, prefix=persona))
    # when
    with path.open("rb") as fh:
        response = client.post("/projects/demo/import/", {"file": fh, "format": "auto"})
    # then
    assert response.status_code == expected
    assert project.items.count() == (2 if expected == 302 and persona in (A, R) else 0)


@pytest.mark.django_db
def test_it_treats_a_researcher_membership_without_the_researcher_role_as_annotator(project, annotator, client):
    """A user whose membership says researcher but who lacks the site role cannot manage."""
    # given
    from annotation import services

    services.membership_set(project=project, user=annotator, role="researcher")
    client.force_login(annotator)
    # when / then
    assert client.get("/projects/demo/import/").status_code == 404
    assert client.get("/api/projects/demo/imports/").status_code == 404
    assert client.get("/projects/demo/").status_code == 200
