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
        if too_deep(obj, MAX_NESTING):
            ctx.errors.add(line, f"the record is nested more than {MAX_NESTING} levels deep")
            continue
        yield line, obj


# Deeper than this a record cannot be stored (the JSON writer stops at 255 levels) and no real
# data set comes close; it is that line's error instead of an internal error for the whole file.
MAX_NESTING = 64


def too_deep(value: object, limit: int) -> bool:
    """Whether lists/objects in ``value`` nest more than ``limit`` levels (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(current, dict):
            stack.extend((v, depth + 1) for v in current.values() if isinstance(v, (dict, list)))
        elif isinstance(current, list):
            stack.extend((v, depth + 1) for v in current if isinstance(v, (dict, list)))
    return False


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
