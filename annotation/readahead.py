"""Read ahead: run a generator on a helper thread, a bounded number of values ahead of its consumer.

Used where one side waits for I/O while the other computes: the importer parses the next chunk
while this thread waits for PostgreSQL, and the export reads the next chunk from PostgreSQL while
this thread turns the current one into rows. While one thread waits (psycopg releases the GIL),
the other runs.

Contract of :func:`read_ahead`:

- at most ``depth`` values wait in the queue, so memory stays bounded;
- an exception in ``source`` is raised in the consumer, at the value where it happened;
- the source generator is closed in the helper thread, the thread that runs it;
- when the consumer stops early (``break``, an exception, ``close()``), the helper is told to
  stop and is joined, unless the thread closing us is the helper itself (never join oneself).
  Callers close the returned generator with ``contextlib.closing`` so that this happens at once,
  in the caller's thread, on every path, and not later by the garbage collector in some other
  thread;
- ``shared_connection``: a Django connection wrapper the helper uses on the consumer's behalf
  (the export reads inside the caller's transaction). Sharing is allowed for the helper's
  lifetime only: it is turned off after the helper was joined.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.1  # how often a blocked helper looks whether the consumer has gone


def read_ahead(
    source: Iterator[T], *, depth: int, name: str, shared_connection: Any = None
) -> Generator[T, None, None]:
    """The values of ``source``, produced on a helper thread named ``name``, ``depth`` ahead."""
    handoff: queue.Queue[tuple[object, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[object, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for value in source:
                if not put((None, value)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((exc, None))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    if shared_connection is not None:
        shared_connection.inc_thread_sharing()
    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            signal, value = handoff.get()
            if signal is None:
                yield value
            elif signal is _DONE:
                return
            else:
                assert isinstance(signal, BaseException)  # produce() hands over nothing else
                raise signal
    finally:
        stop.set()
        if thread is not threading.current_thread():  # never join oneself, whoever closes us
            thread.join()
        if shared_connection is not None:
            shared_connection.dec_thread_sharing()
