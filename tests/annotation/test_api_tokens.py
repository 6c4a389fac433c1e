"""API tokens (issue: hardening 9): they expire, a password change revokes them, their owner lists
and revokes them, and logging out of the API revokes the one in use."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _token(username: str = "bob_annotator", password: str = "pw-bob_annotator") -> dict:
    r = APIClient().post("/api/auth/token/", {"username": username, "password": password})
    assert r.status_code == 200, r.content
    return r.json()


def _as(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


def test_a_token_stops_working_when_it_expires(annotator):
    issued = _token()
    assert _as(issued["token"]).get("/api/projects/").status_code == 200
    AuthToken.objects.filter(token_key=issued["id"]).update(expiry=timezone.now() - timedelta(seconds=1))
    expired = _as(issued["token"]).get("/api/projects/")
    assert expired.status_code == 401 and expired.json()["code"] == "authentication_failed"


def test_a_password_change_revokes_every_token_of_the_user(annotator, researcher):
    mine, other = _token()["token"], _token("rita_researcher", "pw-rita_researcher")["token"]
    annotator.set_password("a-new-long-password-1")
    annotator.save()
    assert _as(mine).get("/api/projects/").status_code == 401
    assert _as(other).get("/api/projects/").status_code == 200  # someone else's are untouched


def test_the_changepassword_command_revokes_them_too(annotator, monkeypatch):
    token = _token()["token"]
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "another-long-password-2")
    call_command("changepassword", "bob_annotator")
    assert _as(token).get("/api/projects/").status_code == 401


def test_the_owner_lists_and_revokes_tokens_and_sees_only_their_own(annotator, researcher):
    first, second = _token(), _token()
    _token("rita_researcher", "pw-rita_researcher")
    api = _as(first["token"])
    listed = api.get("/api/auth/tokens/").json()
    assert {t["id"] for t in listed} == {first["id"], second["id"]}
    assert [t["current"] for t in listed if t["id"] == first["id"]] == [True]
    assert all("token" not in t and "digest" not in t for t in listed)
    # revoke the second; someone else's id is not found
    assert api.delete(f"/api/auth/tokens/{second['id']}/").status_code == 204
    assert _as(second["token"]).get("/api/projects/").status_code == 401
    alices = AuthToken.objects.get(user__username="rita_researcher").token_key
    assert api.delete(f"/api/auth/tokens/{alices}/").status_code == 404
    # logging out revokes the token in use
    assert api.post("/api/auth/logout/").status_code == 204
    assert _as(first["token"]).get("/api/projects/").status_code == 401


def test_logout_all_revokes_every_token(annotator):
    a, b = _token()["token"], _token()["token"]
    assert _as(a).post("/api/auth/logout/?all=1").status_code == 204
    assert _as(b).get("/api/projects/").status_code == 401
