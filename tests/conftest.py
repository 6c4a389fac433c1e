"""Shared fixtures. State is built through services, as users would build it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from annotation import services
from annotation.models import Membership

# Tests that need PostgreSQL features carry ``@pytest.mark.postgres(reason=...)``; on SQLite
# (`make test-sqlite`) they are skipped with "needs PostgreSQL: <reason>". The ``models`` and
# ``browser`` tests do not depend on the database and are the slow ones (real model loads, Chromium):
# on SQLite they skip too, so CI does not run them twice, unless --all-on-sqlite is given.
POSTGRES_ONLY = "needs PostgreSQL: "
DATABASE_INDEPENDENT = ("models", "browser")


def pytest_addoption(parser):
    parser.addoption(
        "--all-on-sqlite", action="store_true", default=False,
        help="on SQLite, also run the database-independent models and browser tests",
    )


def _on_sqlite() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"


def pytest_configure(config):
    _sqlite_flush_like_truncate()


def pytest_collection_modifyitems(config, items):
    if not _on_sqlite():
        return
    run_all = config.getoption("--all-on-sqlite")
    for item in items:
        marker = item.get_closest_marker("postgres")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            if not reason:
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.postgres needs a reason")
            item.add_marker(pytest.mark.skip(reason=POSTGRES_ONLY + reason))
        elif not run_all and any(item.get_closest_marker(name) for name in DATABASE_INDEPENDENT):
            item.add_marker(pytest.mark.skip(reason="database-independent; run on PostgreSQL"))


def _sqlite_flush_like_truncate() -> None:
    """Transactional tests (``transaction=True``, live servers, workers) end with a flush of every
    table. On PostgreSQL that is a TRUNCATE, which fires no row triggers; on SQLite it is a DELETE,
    which the append-only triggers (annotation migrations 0002/0003) reject. For the flush only,
    SQLite's flush SQL lifts every trigger and puts it back verbatim afterwards, in the same
    transaction, so SQLite's flush behaves like TRUNCATE and the triggers stay on for the tests."""
    import django.db.backends.sqlite3.base  # noqa: F401  (operations imports base: import it first)
    from django.db.backends.sqlite3.operations import DatabaseOperations

    if getattr(DatabaseOperations.sql_flush, "tribunal_lifts_triggers", False):
        return
    original = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        sql = original(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        if not sql:
            return sql
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
            triggers = cursor.fetchall()
        drop = [f"DROP TRIGGER {self.quote_name(name)};" for name, _ in triggers]
        return drop + sql + [create for _, create in triggers]

    # Marked so a second call does not wrap it twice; set through setattr, as on any function object.
    setattr(sql_flush, "tribunal_lifts_triggers", True)  # noqa: B010
    setattr(DatabaseOperations, "sql_flush", sql_flush)  # noqa: B010 - patched for the test session only


SHARED_DATA = Path(os.environ.get("TRIBUNAL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_data(relative: str) -> Path:
    """A file from ../shared/data, or skip the test with a clear reason when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data set not available: {path} (../shared/data is beside the project in CI)")
    return path


@pytest.fixture
def presets(db):
    services.roles_ensure_groups()
    versions = {v.taxonomy.slug: v for v in services.taxonomy_load_presets()}
    principles = services.principle_set_load_default()
    return {"taxonomies": versions, "principles": principles}


def _user(username: str, group: str | None, **extra):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def admin_user(presets):
    return _user("alice_admin", "admin", is_staff=True)


@pytest.fixture
def researcher(presets):
    return _user("rita_researcher", "researcher")


@pytest.fixture
def annotator(presets):
    return _user("bob_annotator", "annotator")


@pytest.fixture
def outsider(presets):
    """An annotator who is not a member of ``project``."""
    return _user("charlie_outsider", "annotator")


@pytest.fixture
def project(presets, researcher, annotator):
    project = services.project_create(
        slug="demo",
        name="Demo",
        taxonomy_version=presets["taxonomies"]["aegis-2.0"],
        principle_set=presets["principles"],
        overlap=2,
        created_by=researcher,
    )
    services.membership_set(project=project, user=annotator, role=Membership.Role.ANNOTATOR)
    return project


@pytest.fixture
def other_project(presets, admin_user):
    return services.project_create(
        slug="other",
        name="Other",
        taxonomy_version=presets["taxonomies"]["llama-guard-3"],
        created_by=admin_user,
    )


@pytest.fixture(scope="session")
def model_cache_dir():
    """Where the packaged models are converted, for the whole session (jury and guard tests share
    it): MODEL_CACHE_DIR when set, so repeated local runs and CI reruns convert once, else a folder
    under the test var dir. Worker subprocesses read it from the environment."""
    from django.conf import settings

    path = Path(os.environ.get("MODEL_CACHE_DIR") or (Path(settings.VAR_DIR) / "models"))
    path.mkdir(parents=True, exist_ok=True)
    old = settings.MODEL_CACHE_DIR
    settings.MODEL_CACHE_DIR = path
    os.environ["MODEL_CACHE_DIR"] = str(path)
    yield path
    settings.MODEL_CACHE_DIR = old


@pytest.fixture
def login(client, admin_user, researcher, annotator, outsider):
    """``login(persona)``: the test client logged in as "admin", "researcher", "annotator" or
    "outsider" (a user of no project), or logged out for "anonymous"."""
    users = {"admin": admin_user, "researcher": researcher, "annotator": annotator, "outsider": outsider}

    def as_(persona: str):
        client.logout()
        if persona != "anonymous":
            client.force_login(users[persona])
        return client

    return as_
