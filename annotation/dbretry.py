"""A bounded retry for write transactions that lost a race for a lock.

Where it can still happen:
- SQLite (the embedded default) has one write lock for the whole file. Transactions begin
  IMMEDIATE (``config/settings.py``) and wait up to the busy timeout for it, so "database is
  locked" is rare, but a writer that waited longer than that (a big chunk of an import, a slow
  disk) still gets it;
- PostgreSQL reports a deadlock (40P01), a serialization failure (40001) or a lock that could
  not be taken (55P03); the queue's lock order makes the first rare, but not impossible.

In every one of those cases the database rolled the whole transaction back, so running it again
is safe. :func:`retry_on_lock` does that a bounded number of times with jittered exponential
backoff, and only for a function that owns its transaction (not inside an outer ``atomic``: the
outer block is aborted too, and only its owner can retry it). After the last attempt the error is
raised: the API answers it as ``503 {"code": "busy"}`` (``annotation.api_errors``), never a 500.
"""
from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar, overload

from django.db import DatabaseError, OperationalError, connection

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# PostgreSQL SQLSTATEs that mean "the transaction was rolled back because of a lock; try again".
_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}
_SQLITE_LOCK_MESSAGES = ("database is locked", "database table is locked", "database schema is locked")

ATTEMPTS = 5
BASE_DELAY_S = 0.05
MAX_DELAY_S = 1.0


def is_lock_error(exc: BaseException) -> bool:
    """True when ``exc`` is a lock conflict after which the transaction can simply be run again."""
    if not isinstance(exc, DatabaseError):
        return False
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if getattr(cause, "sqlstate", None) in _RETRYABLE_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and any(m in str(exc).lower() for m in _SQLITE_LOCK_MESSAGES)


def backoff_delay(attempt: int, *, base: float = BASE_DELAY_S, cap: float = MAX_DELAY_S) -> float:
    """Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * (2**attempt)))


@overload
def retry_on_lock(fn: Callable[P, R], *, attempts: int = ...) -> Callable[P, R]: ...
@overload
def retry_on_lock(fn: None = None, *, attempts: int = ...) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def retry_on_lock(
    fn: Callable[P, R] | None = None, *, attempts: int = ATTEMPTS
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: run ``fn`` again (up to ``attempts`` times in all) when it fails with a lock error.

    Put it *outside* ``@transaction.atomic`` so each attempt is a fresh transaction. Inside an
    outer atomic block it does not retry (it cannot undo the caller's work) and lets the error go.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(attempts):
                try:
                    return func(*args, **kwargs)
                except DatabaseError as exc:
                    if attempt == attempts - 1 or connection.in_atomic_block or not is_lock_error(exc):
                        raise
                    delay = backoff_delay(attempt)
                    logger.warning(
                        "%s: %s (attempt %d of %d); retrying in %.0f ms",
                        func.__qualname__, exc, attempt + 1, attempts, delay * 1000,
                    )
                    time.sleep(delay)
            raise AssertionError("unreachable")  # pragma: no cover

        return wrapper

    if fn is not None:
        return decorate(fn)
    return decorate
