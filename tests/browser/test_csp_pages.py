"""Every HTML page carries the Content-Security-Policy (issue: hardening 11), including the Django
admin and the API docs, and still works under it: no violation reported, the page does its job."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _violations(tab) -> list[str]:
    return [m for m in tab.console if "Content Security Policy" in m or "Content-Security-Policy" in m]


@pytest.fixture
def console(tab):
    tab.console = []
    tab.page.on("console", lambda msg: tab.console.append(msg.text))
    return tab


def test_the_api_docs_render_under_the_policy(console, admin_user):
    response = console.goto("/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    console.page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)  # the operations are listed
    assert _violations(console) == [] and console.errors == []
    console.shot("api-docs-csp")


def test_the_admin_works_under_the_policy(console, admin_user):
    response = console.goto("/admin/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    console.login("alice_admin", "pw-alice_admin")
    response = console.goto("/admin/annotation/project/add/")
    assert response.status == 200 and "script-src 'self'" in response.headers["content-security-policy"]
    console.page.wait_for_selector("#project_form")
    assert _violations(console) == [] and console.errors == []
