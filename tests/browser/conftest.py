"""Headless Chromium (Debian's ``chromium``) driven by Playwright against pytest-django's live server.

No browser is downloaded: Playwright launches the system binary. Tests skip with a clear reason
when it is missing (install it with ``apt-get install -y chromium``).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make around it
# are ordinary synchronous calls.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("TRIBUNAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"chromium not installed at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Page:
    """A browser tab that remembers dialogs and page errors, so tests can assert none happened."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def goto(self, path: str):
        return self.page.goto(self.base_url + path)

    def login(self, username: str, password: str) -> None:
        self.page.context.clear_cookies()  # a fresh session: the login page redirects logged-in users
        self.goto("/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        with self.page.expect_navigation():
            self.page.click("form button[type=submit]")

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def tab(chromium, live_server):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield Page(page, live_server.url)
    context.close()


APPEND_ONLY_TABLES = ("annotation_annotation", "annotation_responsesafety", "annotation_annotation_principles")


@pytest.fixture(autouse=True)
def _sqlite_flush_allowed(request):
    """Live-server tests are transactional: pytest-django empties the tables after each test. On
    PostgreSQL that is a TRUNCATE, which the append-only triggers do not see; on SQLite it is a
    DELETE, which they reject. For SQLite only, lift the DELETE triggers for the flush and put them
    back before the next test (the UPDATE triggers stay on throughout)."""
    if "live_server" not in request.fixturenames:
        yield
        return
    from django.db import connection

    request.getfixturevalue("transactional_db")
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        for table in APPEND_ONLY_TABLES:
            cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
            cursor.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} BEGIN SELECT RAISE(ABORT, "
                f"'tribunal: DELETE on {table} is not allowed; annotations are append-only'); END;"
            )
    yield
    with connection.cursor() as cursor:
        for table in APPEND_ONLY_TABLES:
            cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
