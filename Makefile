# Tribunal: two commands.
#   make run    set up .venv, migrate, load presets + demo, start a Celery worker and the web server
#   make test   install the test requirements and run the tests (needs PostgreSQL and Redis)
#   make lint   ruff check . and mypy . (ruff.toml, mypy.ini); no services needed
#   make test-sqlite   the same suite on SQLite, the database `make run` uses (needs Redis)
# Other targets are helpers. Variables can be set on the command line or in the environment.

PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
HOST ?= 127.0.0.1
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="tests/test_settings.py -x"`.
PYTEST_ARGS ?=

export PYTHON VENV

.PHONY: help run test test-sqlite lint venv test-venv

help:
	@echo "make run    start Tribunal on http://$(HOST):$(PORT)/ (embedded SQLite + filesystem broker)"
	@echo "make test   run the tests against PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)"
	@echo "make lint   ruff check . and mypy . (django-stubs, djangorestframework-stubs)"
	@echo "make test-sqlite   run them against SQLite (SQLITE_TEST_URL) and Redis (REDIS_URL)"

venv:
	@scripts/venv.sh run

test-venv:
	@scripts/venv.sh test

run: venv
	@HOST=$(HOST) PORT=$(PORT) scripts/run.sh

# The tests use real services. Defaults match the CI machine: PostgreSQL with trust auth on
# localhost:5432 (pytest-django creates test_<name> next to the database named here) and Redis on
# localhost:6379 (db $CELERY_REDIS_DB, default 0). Override any of them in the environment.
TEST_ENV = export REDIS_URL="$${REDIS_URL:-redis://localhost:6379/$${CELERY_REDIS_DB:-0}}"; \
	export CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$$REDIS_URL}"; \
	export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1; \
	echo "==> pytest (DATABASE_URL=$$DATABASE_URL, CELERY_BROKER_URL=$$CELERY_BROKER_URL)"

test: test-venv
	@export DATABASE_URL="$${DATABASE_URL:-postgres://postgres@localhost:5432/test}"; \
	$(TEST_ENV); \
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The same suite on SQLite, the embedded default of `make run`. DATABASE_URL is ignored here (CI
# exports the PostgreSQL one): SQLITE_TEST_URL names the file, and pytest-django creates and drops
# test_<file> beside it (config/settings_test.py), a file that the worker processes share. Tests
# that need PostgreSQL features, and the database-independent models and browser tests, skip with
# their reason (tests/conftest.py).
SQLITE_TEST_URL ?= sqlite:///$(CURDIR)/var/test-sqlite/tribunal.sqlite3

test-sqlite: test-venv
	@export DATABASE_URL="$(SQLITE_TEST_URL)"; \
	$(TEST_ENV); \
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Static checks, with the test venv's pinned ruff and mypy. mypy's Django plugin imports
# config.settings_test (mypy.ini), which needs no service; it keeps its cache in .mypy_cache/.
lint: test-venv
	@echo "==> ruff check ."
	@$(VENV)/bin/ruff check .
	@echo "==> mypy ."
	@$(VENV)/bin/mypy .
