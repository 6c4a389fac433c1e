"""Real SQLite lock conflicts for tests (`make test-sqlite`): another connection holds the write lock.

SQLite has one write lock for the whole file. :func:`write_lock_held` takes it on a second
connection (``BEGIN IMMEDIATE``) and keeps it; with :func:`short_busy_timeout` the test's own
connection gives up after 100 ms instead of ``SQLITE_BUSY_TIMEOUT_S``, so every write fails with
"database is locked" exactly as on a laptop whose database is held by a long writer.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

only_on_sqlite = pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="SQLite's database-wide write lock; the PostgreSQL row-lock cases are in test_lock_conflicts.py",
)


@contextmanager
def write_lock_held() -> Iterator[None]:
    """Take SQLite's write lock on a second connection and keep it until the block ends."""
    other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None, timeout=5)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.rollback()
        other.close()


@contextmanager
def short_busy_timeout(seconds: float = 0.1) -> Iterator[None]:
    """The test's connection waits ``seconds`` for the write lock (reconnects on the way in and out)."""
    options = connection.settings_dict.setdefault("OPTIONS", {})
    old = options.get("timeout")
    connection.close()
    options["timeout"] = seconds
    try:
        yield
    finally:
        connection.close()
        if old is None:
            options.pop("timeout", None)
        else:
            options["timeout"] = old
