"""Settings come from the environment, with safe embedded defaults (config/env.py, config/settings.py).

Each case boots Django in a fresh subprocess with a clean environment, because settings are read
once at import time and the test process's own settings must not leak in.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import env

ROOT = Path(__file__).resolve().parents[1]

# Prints what the booted settings resolved to, as JSON.
PROBE = """
import json, django
django.setup()
from django.conf import settings
from config.celery import app
db = settings.DATABASES["default"]
print(json.dumps({
    "debug": settings.DEBUG,
    "secret_key": settings.SECRET_KEY,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "db_engine": db["ENGINE"], "db_name": str(db["NAME"]), "db_host": db.get("HOST"),
    "db_port": db.get("PORT"), "db_user": db.get("USER"),
    "broker": app.conf.broker_url,
    "transport_options": app.conf.broker_transport_options,
    "device": settings.TRIBUNAL_DEVICE,
    "model_cache_dir": str(settings.MODEL_CACHE_DIR),
    "import_threshold": settings.IMPORT_BACKGROUND_THRESHOLD,
}))
"""


def boot(tmp_path: Path, code: str = PROBE, **env_vars: str) -> subprocess.CompletedProcess:
    """Run ``code`` under ``config.settings`` with only ``env_vars`` (plus PATH/HOME) set."""
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "TRIBUNAL_VAR_DIR": str(tmp_path / "var"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    clean.update(env_vars)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def probe(tmp_path: Path, **env_vars: str) -> dict:
    proc = boot(tmp_path, **env_vars)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- SECRET_KEY and DEBUG ------------------------------------------------------------------------


def test_it_refuses_to_start_without_a_secret_key_outside_debug(tmp_path):
    proc = boot(tmp_path)

    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr
    assert "SECRET_KEY is not set" in proc.stderr


def test_debug_is_off_unless_asked_for(tmp_path):
    settings = probe(tmp_path, SECRET_KEY="k" * 50)

    assert settings["debug"] is False
    assert settings["allowed_hosts"] == ["127.0.0.1", "localhost"]


def test_debug_without_secret_key_uses_a_dev_only_key(tmp_path):
    settings = probe(tmp_path, DEBUG="1")

    assert settings["debug"] is True
    assert "insecure" in settings["secret_key"]


def test_secret_key_file_wins_over_secret_key(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("from-the-file\n")

    settings = probe(tmp_path, SECRET_KEY="from-env", SECRET_KEY_FILE=str(key_file))

    assert settings["secret_key"] == "from-the-file"


def test_an_unreadable_secret_key_file_is_an_error_naming_it(tmp_path):
    proc = boot(tmp_path, SECRET_KEY_FILE=str(tmp_path / "missing"))

    assert proc.returncode != 0
    assert "SECRET_KEY_FILE" in proc.stderr and "cannot be read" in proc.stderr


@pytest.mark.parametrize("garbage", ["maybe", "2", "yes please", "TRUEISH"])
def test_debug_parsing_rejects_garbage(tmp_path, garbage):
    proc = boot(tmp_path, SECRET_KEY="k" * 50, DEBUG=garbage)

    assert proc.returncode != 0
    assert f"DEBUG={garbage!r} is not a boolean" in proc.stderr


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("false", False), ("off", False), ("", False)],
)
def test_envbool_accepts_the_documented_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("TRIBUNAL_TEST_FLAG", raw)

    assert env.envbool("TRIBUNAL_TEST_FLAG", not expected) is expected


def test_envint_rejects_non_integers_and_values_below_the_minimum(monkeypatch):
    monkeypatch.setenv("TRIBUNAL_TEST_INT", "12MB")
    with pytest.raises(ImproperlyConfigured, match="TRIBUNAL_TEST_INT='12MB' is not an integer"):
        env.envint("TRIBUNAL_TEST_INT", 1)

    monkeypatch.setenv("TRIBUNAL_TEST_INT", "-5")
    with pytest.raises(ImproperlyConfigured, match="must be at least 0"):
        env.envint("TRIBUNAL_TEST_INT", 1, minimum=0)


def test_a_bad_integer_setting_stops_start_up_with_its_name(tmp_path):
    proc = boot(tmp_path, SECRET_KEY="k" * 50, IMPORT_BACKGROUND_THRESHOLD="lots")

    assert proc.returncode != 0
    assert "IMPORT_BACKGROUND_THRESHOLD='lots' is not an integer" in proc.stderr


def test_envlist_splits_and_trims(monkeypatch, tmp_path):
    settings = probe(tmp_path, SECRET_KEY="k" * 50, ALLOWED_HOSTS=" tribunal.example.org, ,10.0.0.5 ")

    assert settings["allowed_hosts"] == ["tribunal.example.org", "10.0.0.5"]


# --- database and broker -------------------------------------------------------------------------


def test_embedded_defaults_are_sqlite_and_the_filesystem_broker(tmp_path):
    settings = probe(tmp_path, SECRET_KEY="k" * 50)

    var = tmp_path / "var"
    assert settings["db_engine"] == "django.db.backends.sqlite3"
    assert settings["db_name"] == str(var / "tribunal.sqlite3")
    assert settings["broker"] == "filesystem://"
    options = settings["transport_options"]
    for key, sub in [("data_folder_in", "queue"), ("data_folder_out", "queue"),
                     ("processed_folder", "processed"), ("control_folder", "control")]:
        assert options[key] == str(var / "broker" / sub)
        assert (var / "broker" / sub).is_dir()
    assert settings["device"] == "auto"
    assert settings["model_cache_dir"] == str(tmp_path / "home" / ".cache" / "tribunal" / "models")


def test_database_url_and_broker_url_are_honoured(tmp_path):
    settings = probe(
        tmp_path,
        SECRET_KEY="k" * 50,
        DATABASE_URL="postgres://tribunal@db.internal:6543/judgments",
        CELERY_BROKER_URL="amqp://guest:guest@mq.internal:5672//",
        TRIBUNAL_DEVICE="cuda:1",
        MODEL_CACHE_DIR="/srv/models",
    )

    assert settings["db_engine"] == "django.db.backends.postgresql"
    assert (settings["db_name"], settings["db_host"], settings["db_port"], settings["db_user"]) == (
        "judgments", "db.internal", 6543, "tribunal",
    )
    assert settings["broker"] == "amqp://guest:guest@mq.internal:5672//"
    assert not settings["transport_options"]  # the filesystem folders only apply to filesystem://
    assert not (tmp_path / "var" / "broker").exists()
    assert settings["device"] == "cuda:1"
    assert settings["model_cache_dir"] == "/srv/models"


CONNECT = """
import django
django.setup()
from django.db import connection
from config.celery import app
with connection.cursor() as cur:
    cur.execute("SELECT 1")
    print("db", connection.vendor, cur.fetchone()[0])
with app.connection_for_write() as conn:
    conn.ensure_connection(max_retries=1)
    print("broker", conn.transport.driver_type)
"""


def test_the_configured_database_and_redis_are_really_used(tmp_path):
    """Connect for real to the services this test run was given (make test, make test-sqlite and
    .ci/run set them)."""
    database_url = os.environ.get("DATABASE_URL", "")
    broker_url = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL", "")
    vendor = "postgresql" if database_url.startswith("postgres") else "sqlite" if database_url.startswith("sqlite") else ""
    if not vendor or not broker_url.startswith("redis"):
        pytest.skip("needs DATABASE_URL=postgres://... or sqlite:///... and CELERY_BROKER_URL/REDIS_URL=redis://... "
                    "(make test and make test-sqlite set them)")

    proc = boot(tmp_path, code=CONNECT, SECRET_KEY="k" * 50, DATABASE_URL=database_url, CELERY_BROKER_URL=broker_url)

    assert proc.returncode == 0, proc.stderr
    assert f"db {vendor} 1" in proc.stdout
    assert "broker redis" in proc.stdout


HEADERS_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
c = Client()
schema = c.get("/api/schema/")
docs = c.get("/api/docs/")
print(json.dumps({
    "hsts": settings.SECURE_HSTS_SECONDS,
    "proxy": list(getattr(settings, "SECURE_PROXY_SSL_HEADER", None) or []),
    "schema": schema.status_code, "docs": docs.status_code,
    "hsts_header": c.get("/api/schema/", secure=True).headers.get("Strict-Transport-Security"),
}))
"""


def test_https_deployments_get_hsts_and_the_api_docs_can_require_login(tmp_path):
    plain = json.loads(boot(tmp_path, HEADERS_PROBE, SECRET_KEY="k" * 50, ALLOWED_HOSTS="testserver").stdout)
    assert plain["hsts"] == 0 and plain["proxy"] == [] and plain["hsts_header"] is None
    assert (plain["schema"], plain["docs"]) == (200, 200)

    proc = boot(tmp_path, HEADERS_PROBE, SECRET_KEY="k" * 50, ALLOWED_HOSTS="testserver", SESSION_COOKIE_SECURE="1",
                TRUST_X_FORWARDED_PROTO="1", API_DOCS_REQUIRE_LOGIN="1")
    assert proc.returncode == 0, proc.stderr
    secure = json.loads(proc.stdout)
    assert secure["hsts"] == 31_536_000 and secure["hsts_header"] == "max-age=31536000"
    assert secure["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert (secure["schema"], secure["docs"]) == (401, 401)
