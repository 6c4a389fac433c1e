"""Start a real Celery worker process for integration tests (the test database + Redis).

Usage (with ``@pytest.mark.django_db(transaction=True)`` so the test's rows are committed and the
worker, another process, can see them)::

    url = redis_url_or_skip()
    with broker_in_this_process(url), celery_worker(broker_url=url, log_path=tmp_path / "worker.log"):
        batch = import_file(..., background=True)   # published to Redis after commit
        wait_for(lambda: ..., timeout=30)

The worker runs ``celery -A config worker --pool solo -Q celery,gpu`` with ``config.settings``
(not the test settings), ``DATABASE_URL`` pointing at pytest-django's test database (PostgreSQL, or
the SQLite file that ``config/settings_test.py`` names), and the test's
``TRIBUNAL_VAR_DIR``. It is terminated (then killed) when the block ends.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
QUEUES = ("celery", "gpu")


def redis_url() -> str:
    """The Redis this test run may use: REDIS_URL, a redis CELERY_BROKER_URL, or db CELERY_REDIS_DB."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if broker.startswith("redis"):
        return broker
    return f"redis://localhost:6379/{os.environ.get('CELERY_REDIS_DB', '0')}"


def redis_url_or_skip() -> str:
    """``redis_url()``, checked with a PING; skips when Redis is down (fails in CI, where it must be up)."""
    import redis

    url = redis_url()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        message = f"Redis at {url} is not reachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def purge_queues(url: str, queues: tuple[str, ...] = QUEUES) -> None:
    """Drop messages left in these queues by an earlier run (a stale message would run first)."""
    import redis

    client = redis.Redis.from_url(url)
    client.delete(*queues, "unacked", "unacked_index")


def database_url_for(connection) -> str:
    """A DATABASE_URL for the database ``connection`` is using now (pytest-django's test database)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(s["NAME"])
        if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
            pytest.skip("a worker process cannot see an in-memory SQLite test database (settings_test sets a file)")
        return f"sqlite:///{name}"  # an absolute path gives sqlite:////abs/path
    if connection.vendor != "postgresql":
        pytest.skip(f"no DATABASE_URL for a {connection.vendor} test database")
    auth = quote(s.get("USER") or "postgres")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s.get('HOST') or 'localhost'}:{s.get('PORT') or 5432}/{s['NAME']}"


@contextmanager
def broker_in_this_process(url: str) -> Iterator[None]:
    """Make the test process's Celery app publish to ``url`` (and restore it afterwards).

    The app reads CELERY_BROKER_URL once from the settings, and caches its connection and producer
    pools, so both are dropped on the way in and out.
    """
    import kombu.pools

    from config.celery import app

    def reset_pools() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
        # kombu keeps producer pools in a process-wide registry keyed by broker URL: when the new
        # URL equals the old one (CI points CELERY_BROKER_URL at the same Redis), the app would be
        # handed the old producer pool, bound to the connection pool just closed. Clear it too.
        kombu.pools.reset()
        app._after_fork()  # Celery's own way to forget the connection and producer pools

    old_url, old_options = app.conf.broker_url, app.conf.broker_transport_options
    reset_pools()
    app.conf.broker_url, app.conf.broker_transport_options = url, {}
    try:
        yield
    finally:
        reset_pools()
        app.conf.broker_url, app.conf.broker_transport_options = old_url, old_options


@contextmanager
def celery_worker(
    *,
    broker_url: str,
    log_path: Path,
    queues: tuple[str, ...] = QUEUES,
    extra_env: dict[str, str] | None = None,
    ready_timeout: float = 45.0,
) -> Iterator[subprocess.Popen]:
    """Run a real worker against the current test database until the block ends."""
    from django.conf import settings
    from django.db import connection

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url_for(connection),
        "CELERY_BROKER_URL": broker_url,
        "SECRET_KEY": settings.SECRET_KEY,
        "TRIBUNAL_VAR_DIR": str(settings.VAR_DIR),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "HF_HUB_OFFLINE": "1",
        **(extra_env or {}),
    }
    purge_queues(broker_url, queues)
    cmd = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-Q", ",".join(queues),
        "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
    ]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + ready_timeout
        while b" ready." not in log_path.read_bytes():
            if proc.poll() is not None:
                pytest.fail(f"the Celery worker exited with {proc.returncode}:\n{tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"the Celery worker was not ready after {ready_timeout:.0f} s:\n{tail(log_path)}")
            time.sleep(0.2)
        yield proc
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Warm shutdown (SIGTERM), then SIGKILL of the worker's process group if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def wait_for(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
