"""Test settings: the real settings plus a few speed-ups. Databases and brokers stay real
(DATABASE_URL points at PostgreSQL in CI; Redis for the worker integration tests)."""
import os

os.environ.setdefault("SECRET_KEY", "tribunal-test-secret-key-not-for-production")
os.environ.setdefault("TRIBUNAL_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]

# WhiteNoise warns on every request when STATIC_ROOT does not exist; tests serve from finders.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - from config.settings
TESTING = True  # lets the "fake" model backend through spec validation (jury.backends.registry)
AXES_ENABLED = False  # client.login() passes no request; tests/annotation/test_login_protection.py turns it on
LOGIN_RATE = "10000/min"  # the suite logs in many times from one address; the throttle test sets its own
