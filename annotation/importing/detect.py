"""``--format auto``: decide the format from the file name's extension and the first record."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson

from annotation.importing.formats import json_error
from annotation.importing.reader import peek_first_line

FORMATS = ("tribunal", "csv", "hh-rlhf", "oasst", "aegis", "csv-raters")

_AEGIS_KEYS = {"prompt_label", "response_label", "violated_categories"}


class DetectError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def format_from_keys(keys: set[str], *, first: dict | None = None) -> str | None:
    """The format a record (or CSV header) with these keys belongs to, or None."""
    if {"chosen", "rejected"} <= keys:
        return "hh-rlhf"
    if "message_tree_id" in keys or (first is not None and isinstance(first.get("prompt"), dict)):
        return "oasst"
    if keys & _AEGIS_KEYS or {"category", "instruct_response"} <= keys:
        return "aegis"
    if "responses" in keys:
        return "tribunal"
    return None


def detect_format(path: Path | str, *, source_name: str, max_line_bytes: int) -> str:
    """Return one of ``FORMATS`` or raise ``DetectError`` saying why it cannot tell."""
    name = source_name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = Path(name).suffix
    first = peek_first_line(path, max_line_bytes=max_line_bytes)
    if first is None:
        raise DetectError(1, "cannot detect the format: the file is empty or its first line is unreadable")
    line, text = first
    stripped = text.lstrip()
    if suffix == ".csv" or (suffix not in (".jsonl", ".json", ".ndjson") and not stripped.startswith("{")):
        try:
            header = next(csv.reader(io.StringIO(text)))
        except (csv.Error, StopIteration) as exc:
            raise DetectError(line, f"cannot detect the format: unreadable CSV header ({exc})") from None
        keys = {h.strip() for h in header}
        fmt = format_from_keys(keys)
        if fmt == "tribunal":
            return "csv"
        if fmt == "aegis":
            return "aegis"
        raise DetectError(
            line,
            "cannot detect the format: CSV columns must include prompt and responses (Tribunal CSV) "
            "or prompt_label / violated_categories / category+instruct_response (Aegis)",
        )
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise DetectError(line, f"cannot detect the format: {json_error(exc)}") from None
    if isinstance(obj, list):
        raise DetectError(line, "cannot detect the format: a JSON array; write one JSON object per line (JSONL)")
    if not isinstance(obj, dict):
        raise DetectError(line, "cannot detect the format: the first line is not a JSON object")
    fmt = format_from_keys(set(obj), first=obj)
    if fmt is None:
        raise DetectError(
            line,
            f"cannot detect the format from the keys {sorted(obj)[:8]}: expected responses (Tribunal), "
            "chosen/rejected (HH-RLHF), message_tree_id (oasst) or prompt_label (Aegis)",
        )
    return fmt
