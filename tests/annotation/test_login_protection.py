"""Brute-force protection (issue: hardening 8): lockout by account and by address (django-axes)
and a per-address rate on the login form and the token endpoint. Real requests through the
real views, middleware and authentication backends."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def lockout(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    cache.clear()
    yield
    cache.clear()


def _form_login(client: Client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_the_form_locks_an_account_out_after_the_limit_and_an_admin_lifts_it(lockout, annotator):
    c = Client()
    for _ in range(2):
        assert _form_login(c, "bob_annotator", "wrong").status_code == 200  # the form again, with its error
    assert _form_login(c, "bob_annotator", "wrong").status_code == 429  # the third failure locks
    # now even the right password is refused, unchecked, with a reason
    refused = _form_login(c, "bob_annotator", "pw-bob_annotator")
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.content.decode() and "15 minutes" in refused.content.decode()
    # from another address too: the account is locked
    assert _form_login(Client(), "bob_annotator", "pw-bob_annotator", ip="10.0.0.2").status_code == 429
    # when an admin lifts the lock
    call_command("axes_reset_username", "bob_annotator")
    ok = _form_login(Client(), "bob_annotator", "pw-bob_annotator", ip="10.0.0.3")
    assert ok.status_code == 302


def test_one_address_guessing_many_accounts_is_locked_out(lockout, annotator, researcher):
    c = Client()
    for name in ("alice", "carol", "dave"):
        _form_login(c, name, "guess", ip="10.9.9.9")
    assert _form_login(c, "bob_annotator", "pw-bob_annotator", ip="10.9.9.9").status_code == 429
    # another address is not affected
    assert _form_login(Client(), "bob_annotator", "pw-bob_annotator", ip="10.9.9.8").status_code == 302


def test_the_token_endpoint_locks_out_with_json_and_a_code(lockout, annotator):
    api = APIClient()
    for _ in range(2):
        r = api.post("/api/auth/token/", {"username": "bob_annotator", "password": "wrong"}, REMOTE_ADDR="10.1.1.1")
        assert r.status_code == 400
    r = api.post("/api/auth/token/", {"username": "bob_annotator", "password": "wrong"}, REMOTE_ADDR="10.1.1.1")
    assert r.status_code == 429 and r.json()["code"] == "locked_out"
    r = api.post("/api/auth/token/", {"username": "bob_annotator", "password": "pw-bob_annotator"},
                 REMOTE_ADDR="10.1.1.1")
    assert r.status_code == 429 and r.json()["code"] == "locked_out"
    assert "key" not in r.json() and "token" not in r.json()


def test_a_success_resets_the_count(lockout, annotator):
    c = Client()
    for _ in range(2):
        _form_login(c, "bob_annotator", "wrong")
    assert _form_login(c, "bob_annotator", "pw-bob_annotator").status_code == 302
    c = Client()
    for _ in range(2):
        _form_login(c, "bob_annotator", "wrong")
    assert _form_login(c, "bob_annotator", "pw-bob_annotator").status_code == 302


def test_attempts_per_address_are_rate_limited_on_the_form_and_the_token_endpoint(settings, annotator):
    settings.LOGIN_RATE = "3/min"
    cache.clear()
    c = Client()
    for _ in range(3):
        _form_login(c, "bob_annotator", "wrong", ip="10.2.2.2")
    slow = _form_login(c, "bob_annotator", "pw-bob_annotator", ip="10.2.2.2")
    assert slow.status_code == 429 and "Too many login attempts" in slow.content.decode()
    api = APIClient()
    for _ in range(3):
        api.post("/api/auth/token/", {"username": "x", "password": "y"}, REMOTE_ADDR="10.3.3.3")
    r = api.post("/api/auth/token/", {"username": "x", "password": "y"}, REMOTE_ADDR="10.3.3.3")
    assert r.status_code == 429 and r.json()["code"] == "throttled"
    cache.clear()
