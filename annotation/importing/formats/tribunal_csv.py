"""``csv``: the own format as CSV, ``id,prompt,responses,metadata`` (+ optional ``ranking``,
``preference``, ``safety``, ``annotations``); ``responses``/``metadata``/judgments are JSON in a cell."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from annotation.importing.formats.lines import csv_rows, guarded
from annotation.importing.formats.records import ParseContext, Record, RecordError, json_error
from annotation.importing.formats.tribunal import parse_tribunal_object


def _tribunal_from_csv(row: dict, line: int, ctx: ParseContext) -> Record:
    if "prompt" not in row or "responses" not in row:
        raise RecordError("CSV needs the columns id, prompt, responses, metadata")
    obj: dict[str, Any] = {"id": row.get("id", ""), "prompt": row["prompt"]}
    prompt = row["prompt"].strip()
    if prompt.startswith("[{"):
        try:
            obj["prompt"] = orjson.loads(prompt)
        except orjson.JSONDecodeError:
            pass  # plain text that happens to start with "[{"
    for column in ("responses", "metadata", "ranking", "preference", "safety", "annotations"):
        cell = (row.get(column) or "").strip()
        if not cell:
            continue
        try:
            obj[column] = orjson.loads(cell)
        except orjson.JSONDecodeError as exc:
            raise RecordError(f"column {column}: {json_error(exc)}") from None
    return parse_tribunal_object(obj, line, ctx)


def parse_csv(lines, ctx: ParseContext) -> Iterator[Record]:
    return guarded(csv_rows(lines, ctx), _tribunal_from_csv, ctx)
