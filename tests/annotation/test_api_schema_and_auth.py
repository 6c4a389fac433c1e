"""The OpenAPI schema, the offline docs and token authentication."""
from __future__ import annotations

import pytest
from drf_spectacular.validation import validate_schema
from knox.models import AuthToken
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

OUR_PATHS = {
    "/api/auth/token/": {"post"},
    "/api/projects/": {"get", "post"},
    "/api/projects/{slug}/": {"get"},
    "/api/projects/{slug}/items/": {"get"},
    "/api/projects/{slug}/items/{id}/": {"get"},
    "/api/projects/{slug}/imports/": {"get", "post"},
    "/api/projects/{slug}/imports/{id}/": {"get"},
    "/api/taxonomies/": {"get"},
    "/api/taxonomies/{slug}/versions/{number}/": {"get"},
    "/api/principle-sets/": {"get"},
}


def test_schema_is_valid_openapi_listing_every_endpoint_with_its_permissions(client):
    # when
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    # then
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)  # raises on invalid OpenAPI 3
    for path, methods in OUR_PATHS.items():
        assert path in schema["paths"], path
        for method in methods:
            operation = schema["paths"][path][method]
            assert "**Permissions:**" in operation["description"], (path, method)
            assert operation["x-permissions"], (path, method)
    imports_post = schema["paths"]["/api/projects/{slug}/imports/"]["post"]
    assert "multipart/form-data" in imports_post["requestBody"]["content"]
    assert "annotators and non-members get 404" in imports_post["description"]
    # both token and session authentication are declared
    assert {"knoxApiToken", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_docs_page_points_at_the_schema(client):
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html and '<script src="/api/docs/?script="></script>' in html
    # the start-up script is a file of its own (CSP: no inline script), and it points at the schema
    script = client.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript") and "/api/schema/" in script.content.decode()


def test_a_token_is_issued_for_the_right_password_and_authenticates(annotator, project):
    # given
    api = APIClient()
    # when
    response = api.post("/api/auth/token/", {"username": "bob_annotator", "password": "pw-bob_annotator"})
    # then
    assert response.status_code == 200
    key = response.json()["token"]
    stored = AuthToken.objects.get(user=annotator)
    assert stored.token_key == response.json()["id"] == key[: len(stored.token_key)]
    assert key not in (stored.digest, stored.token_key)  # only a hash of it is kept
    assert stored.expiry is not None
    # when the token is used (no session)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    listing = api.get("/api/projects/")
    # then
    assert listing.status_code == 200
    assert [p["slug"] for p in listing.json()] == ["demo"]


def test_a_wrong_password_gets_no_token(annotator):
    response = APIClient().post("/api/auth/token/", {"username": "bob_annotator", "password": "nope"})
    assert response.status_code == 400
    assert not AuthToken.objects.filter(user=annotator).exists()


def test_a_bad_token_is_refused(annotator):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = api.get("/api/projects/")
    # 401 with a challenge: token authentication is listed first
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"] == "Invalid token."


def test_the_whole_schema_generates_without_warnings_and_every_operation_states_permissions(tmp_path):
    """Guards every app's endpoints, not just this one's: a later endpoint that drf-spectacular
    cannot describe, or two components with one name, fails here."""
    import yaml
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("x-permissions"), (path, method)
            assert "**Permissions:**" in operation["description"], (path, method)
