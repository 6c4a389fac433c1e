"""Numbered lines → raw objects (JSON lines, CSV rows), and ``guarded``, which turns each into
records and logs a ``RecordError`` against its line instead of raising."""
from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from annotation.importing.formats.records import ParseContext, Record, RecordError, json_error, kind_of


def json_objects(lines: Iterable[tuple[int, str | None]], ctx: ParseContext) -> Iterator[tuple[int, dict]]:
    """JSON lines → ``(line, object)``; blank lines are skipped, everything else must be an object."""
    for line, text in lines:
        if text is None:
            ctx.records_read += 1
            continue
        if not text.strip():
            continue
        ctx.records_read += 1
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            ctx.errors.add(line, json_error(exc))
            continue
        if not isinstance(obj, dict):
            ctx.errors.add(line, f"expected a JSON object, got {kind_of(obj)}")
            continue
        yield line, obj


def csv_rows(lines: Iterable[tuple[int, str | None]], ctx: ParseContext) -> Iterator[tuple[int, dict]]:
    """CSV (header row first) → ``(line where the row starts, {column: cell})``.

    A quoted cell may span lines; the line reported is the row's first. Unreadable lines (already
    reported) are fed to the CSV parser as empty lines so the rest of the file is still checked.
    """
    csv.field_size_limit(max(csv.field_size_limit(), ctx.max_line_bytes))
    state = {"line": 0}

    def texts() -> Iterator[str]:
        for line, text in lines:
            state["line"] = line
            yield "\n" if text is None else text

    reader = csv.reader(texts())
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        ctx.errors.add(state["line"], f"invalid CSV: {exc}")
        return
    start = state["line"] + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            ctx.errors.add(state["line"], f"invalid CSV: {exc}")
            return
        line, start = start, state["line"] + 1
        if not row or all(not cell.strip() for cell in row):
            continue
        ctx.records_read += 1
        if len(row) != len(header):
            ctx.errors.add(line, f"expected {len(header)} columns, found {len(row)}")
            continue
        yield line, dict(zip(header, row))


def guarded(items: Iterable[tuple[int, Any]], build, ctx: ParseContext) -> Iterator[Record]:
    for line, obj in items:
        try:
            result = build(obj, line, ctx)
        except RecordError as exc:
            ctx.errors.add(line, str(exc))
            continue
        if result is None:
            continue
        if isinstance(result, Record):
            yield result
        else:
            yield from result
