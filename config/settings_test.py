"""Test settings: the real settings plus a few speed-ups. Databases and brokers stay real
(DATABASE_URL points at PostgreSQL in CI, then at SQLite for `make test-sqlite`; Redis for the
worker integration tests)."""
import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "tribunal-test-secret-key-not-for-production")
os.environ.setdefault("TRIBUNAL_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]

# WhiteNoise warns on every request when STATIC_ROOT does not exist; tests serve from finders.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - from config.settings
TESTING = True  # lets the "fake" model backend through spec validation (jury.backends.registry)
AXES_ENABLED = False  # client.login() passes no request; tests/annotation/test_login_protection.py turns it on
# Test workers start and stop many times: converting models at each start would load every CPU for
# minutes. Tests that load models convert them once per session (tests/conftest.py: model_cache_dir).
JURY_PREPARE_MODELS_ON_START = False
LOGIN_RATE = "10000/min"  # the suite logs in many times from one address; the throttle test sets its own

# On SQLite (DATABASE_URL=sqlite:///path, `make test-sqlite`) pytest-django would otherwise create an
# in-memory test database, which the Celery workers and servers that integration tests start (other
# processes) cannot see. Use a file beside the named database instead, as PostgreSQL's test_<name>
# is beside its database: sqlite:///tmp/x/tribunal.sqlite3 tests in /tmp/x/test_tribunal.sqlite3.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    _name = Path(DATABASES["default"]["NAME"]).resolve()  # noqa: F405
    _name.parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(_name.with_name("test_" + _name.name))}  # noqa: F405
