"""annotation.readahead.read_ahead: order, bounds, errors, early stop and closing (no database)."""
from __future__ import annotations

import contextlib
import threading
import time

import pytest

from annotation.readahead import read_ahead


class Source:
    """A generator-like source that records which thread closed it and how far it got."""

    def __init__(self, values):
        self.values = list(values)
        self.produced = 0
        self.closed_in: str | None = None

    def __iter__(self):
        return self

    def __next__(self):
        if self.produced == len(self.values):
            raise StopIteration
        value = self.values[self.produced]
        self.produced += 1
        if isinstance(value, Exception):
            raise value
        return value

    def close(self):
        self.closed_in = threading.current_thread().name


def test_it_yields_every_value_in_order_and_closes_the_source_in_the_helper():
    source = Source(range(10))
    assert list(read_ahead(source, depth=2, name="t-helper")) == list(range(10))
    assert source.closed_in == "t-helper"


def test_it_runs_at_most_depth_values_ahead():
    source = Source(range(100))
    reader = read_ahead(source, depth=2, name="t-bounded")
    with contextlib.closing(reader):
        assert next(reader) == 0
        time.sleep(0.3)
        # one handed over, two waiting in the queue, one in the helper's hand
        assert source.produced <= 4


def test_an_error_in_the_source_is_raised_in_the_consumer_after_the_values_before_it():
    source = Source([1, 2, ValueError("line 3 is bad"), 4])
    got = []
    with pytest.raises(ValueError, match="line 3 is bad"):
        for value in read_ahead(source, depth=1, name="t-error"):
            got.append(value)
    assert got == [1, 2]


def test_stopping_early_stops_and_joins_the_helper():
    source = Source(range(1000))
    reader = read_ahead(source, depth=1, name="t-early")
    with contextlib.closing(reader):
        assert next(reader) == 0
    assert not any(t.name == "t-early" for t in threading.enumerate())
    assert source.closed_in == "t-early" and source.produced < 1000


class Connection:
    def __init__(self):
        self.calls: list[str] = []

    def inc_thread_sharing(self):
        self.calls.append("inc")

    def dec_thread_sharing(self):
        self.calls.append("dec")


def test_a_shared_connection_is_shared_only_while_the_helper_lives():
    conn = Connection()
    reader = read_ahead(Source([1, 2, 3]), depth=1, name="t-conn", shared_connection=conn)
    assert conn.calls == []  # nothing happens before the first value is asked for
    assert next(reader) == 1 and conn.calls == ["inc"]
    reader.close()
    assert conn.calls == ["inc", "dec"]
