"""``aegis``: Aegis 2.0 rows (CSV or JSONL): ``prompt, response, prompt_label, response_label,
violated_categories``; or the shared subset layout ``id, prompt, category, domain, task,
instruct_response`` (an unsafe prompt with that category and a safe reply)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from annotation.importing.formats.lines import csv_rows, guarded, json_objects
from annotation.importing.formats.records import (
    ParseContext,
    Record,
    RecordError,
    ResponseIn,
    check_json,
    check_text,
    kind_of,
    safety_label,
)


def _text_cell(row: dict, key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{key} must be text, got {kind_of(value)}")
    return value


def _aegis_categories(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise RecordError(f"violated_categories must be a comma-separated string or a list, got {kind_of(value)}")
    return [part.strip() for part in value.split(",") if part.strip()]


def _aegis_record(row: dict, line: int, ctx: ParseContext) -> Record | None:
    """One Aegis row → an item (prompt + at most one response) and an imported safety annotation
    under the project's taxonomy.

    Full Aegis 2.0 rows: ``violated_categories`` go on each part labelled unsafe (the prompt
    and/or the response). The raw row labels are also kept in ``metadata["aegis"]`` so nothing is
    lost. Rows whose prompt is ``REDACTED`` (not distributed by NVIDIA) are counted as ignored.
    The Aegis ``id`` is not unique per row, so it is kept in metadata, not as the external id.

    Shared-subset rows (``category`` + ``instruct_response``): the prompt is unsafe with that
    category and the response is labelled safe.
    """
    prompt_text = _text_cell(row, "prompt")
    if prompt_text is None or not prompt_text.strip():
        raise RecordError("missing prompt")
    if prompt_text.strip() == "REDACTED":
        ctx.ignored += 1
        return None
    meta: dict[str, Any] = {}
    if row.get("id") not in (None, ""):
        meta["aegis_id"] = str(row["id"])
    responses: list[ResponseIn] = []
    response_safety: list[tuple[int, str, list[str]]] = []
    if "instruct_response" in row and "prompt_label" not in row:
        category = _text_cell(row, "category")
        if not category or not category.strip():
            raise RecordError("missing category")
        codes = ctx.categories.resolve([category.strip()])
        prompt_label = "unsafe"
        reply = _text_cell(row, "instruct_response")
        if not reply or not reply.strip():
            raise RecordError("no responses (instruct_response is empty)")
        responses.append(ResponseIn(text=check_text(reply, "instruct_response")))
        response_safety.append((0, "safe", []))
        for key in ("domain", "task"):
            if row.get(key):
                meta[key] = row[key]
        meta["aegis"] = {"category": category}
    else:
        if row.get("prompt_label") in (None, ""):
            raise RecordError("missing prompt_label")
        prompt_label = safety_label(row["prompt_label"], "prompt_label")
        names = _aegis_categories(row.get("violated_categories"))
        codes_all = ctx.categories.resolve(names)
        codes = codes_all if prompt_label == "unsafe" else []
        reply = _text_cell(row, "response")
        response_label = row.get("response_label")
        # An empty response ("") that carries a response label is kept: Aegis labels it (the card
        # says so), and the label would be lost with it. A null or blank unlabelled one is no response.
        if reply is not None and (reply.strip() or (reply == "" and response_label not in (None, ""))):
            responses.append(ResponseIn(text=check_text(reply, "response")))
            if response_label not in (None, ""):
                label = safety_label(response_label, "response_label")
                response_safety.append((0, label, codes_all if label == "unsafe" else []))
        meta["aegis"] = {
            key: row.get(key)
            for key in ("prompt_label", "response_label", "violated_categories", "prompt_label_source",
                        "response_label_source")
            if row.get(key) not in (None, "")
        }
    return Record(
        line=line,
        prompt=[{"role": "user", "content": check_text(prompt_text, "prompt")}],
        responses=responses,
        metadata=check_json(meta, "metadata"),
        prompt_label=prompt_label,
        prompt_categories=codes,
        response_safety=response_safety,
        source_detail="aegis",
    )


def parse_aegis(lines, ctx: ParseContext) -> Iterator[Record]:
    """Aegis rows, as CSV (header first) or JSONL (decided by the first non-blank line)."""
    lines = iter(lines)
    head: list[tuple[int, str | None]] = []
    for entry in lines:
        head.append(entry)
        if entry[1] is not None and entry[1].strip():
            break
    rest = _chain(head, lines)
    if _first_content(head).startswith("{"):
        return guarded(json_objects(rest, ctx), _aegis_record, ctx)
    return guarded(csv_rows(rest, ctx), _aegis_record, ctx)


def _chain(head: list, tail: Iterator) -> Iterator:
    yield from head
    yield from tail


def _first_content(lines: list[tuple[int, str | None]]) -> str:
    for _line, text in lines:
        if text and text.strip():
            return text.lstrip()
    return ""
