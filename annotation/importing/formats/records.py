"""What every parser shares: the normalised ``Record``, the per-run ``ParseContext``, the
taxonomy ``CategoryMap`` and the field checks that turn a bad value into a ``RecordError``."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from annotation.importing.reader import ErrorLog
from annotation.judgments import MAX_RESPONSES  # noqa: F401 - re-exported: one limit for imports and judgments

# Field limits of the data model (annotation/models.py).
MAX_EXTERNAL_ID = 255
MAX_MODEL_NAME = 200
MAX_RATER = 100  # Annotation.rater
ROLES = {"system", "user", "assistant"}

SAFETY_LABELS = {"safe": "safe", "unsafe": "unsafe", "needs caution": "needs_caution", "caution": "needs_caution"}


class RecordError(Exception):
    """A problem with one record; becomes ``{"line": N, "error": str(exc)}``."""


@dataclass(slots=True)
class ResponseIn:
    text: str
    model: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass(slots=True)
class Rating:
    """One named rater's judgment of a record's item: the same judgment fields as ``Record`` (response
    *indexes*), stored as an imported Annotation whose ``rater`` is this id."""

    rater: str
    ranking: list[list[int]] | None = None
    pair: tuple[int, int, str, int | None] | None = None
    prompt_label: str = ""
    prompt_categories: list[str] = field(default_factory=list)
    response_safety: list[tuple[int, str, list[str]]] = field(default_factory=list)

    def fingerprint(self) -> str:
        """The judgment in canonical form (by response position): equal for the same judgment, so a
        rater's label seen again (a second import of the file) is recognised as already stored."""
        return judgment_fingerprint(
            ranking=self.ranking, pair=self.pair, prompt_label=self.prompt_label,
            prompt_categories=self.prompt_categories, response_safety=self.response_safety,
        )


def judgment_fingerprint(*, ranking, pair, prompt_label: str, prompt_categories, response_safety) -> str:
    """Canonical JSON of a judgment given by response positions (see ``Rating.fingerprint``)."""
    return orjson.dumps([
        [sorted(group) for group in ranking] if ranking else None,
        list(pair) if pair else None,
        prompt_label or "",
        sorted(prompt_categories or []),
        sorted([index, label, sorted(codes)] for index, label, codes in response_safety or []),
    ]).decode()


@dataclass(slots=True)
class Record:
    """One future Item with its Responses, (optionally) one imported Annotation without a rater id,
    and the imported Annotations of named raters (``ratings``, one per rater).

    ``ranking`` holds tie groups of response *indexes*, best first; ``pair`` is
    ``(a_index, b_index, choice, strength)``; ``response_safety`` is ``[(index, label, codes)]``.
    """

    line: int
    prompt: list[dict]
    responses: list[ResponseIn]
    external_id: str = ""
    metadata: dict = field(default_factory=dict)
    ranking: list[list[int]] | None = None
    pair: tuple[int, int, str, int | None] | None = None
    prompt_label: str = ""
    prompt_categories: list[str] = field(default_factory=list)
    response_safety: list[tuple[int, str, list[str]]] = field(default_factory=list)
    source_detail: str = ""
    ratings: list[Rating] = field(default_factory=list)

    @property
    def has_annotation(self) -> bool:
        """Whether the record holds a judgment without a rater id (the single-label form)."""
        return bool(self.ranking or self.pair or self.prompt_label or self.response_safety)

    @property
    def annotation_count(self) -> int:
        return int(self.has_annotation) + len(self.ratings)


class CategoryMap:
    """Category names → codes of one taxonomy version: codes, names and aliases, case-insensitive.

    Aegis spellings (model card vs guard prompt) both map because the preset lists the guard-prompt
    spelling as an alias; a name the project's taxonomy does not know is an error of its line.
    """

    def __init__(self, entries: Iterable[tuple[str, str, list[str]]], label: str) -> None:
        self.label = label
        self._codes: dict[str, str] = {}
        entries = list(entries)
        # Names and aliases first, codes last, so a code always resolves to itself.
        for code, name, aliases in entries:
            for spelling in [name, *(aliases or [])]:
                self._codes.setdefault(_norm(spelling), code)
        for code, _name, _aliases in entries:
            self._codes[_norm(code)] = code

    @classmethod
    def for_version(cls, version) -> CategoryMap:
        rows = version.categories.values_list("code", "name", "aliases")
        return cls(rows, label=str(version))

    def resolve(self, names: Iterable[Any]) -> list[str]:
        codes: list[str] = []
        unknown: list[str] = []
        for name in names:
            if not isinstance(name, str):
                raise RecordError(f"category must be a string, got {kind_of(name)}")
            code = self._codes.get(_norm(name))
            if code is None:
                unknown.append(name)
            elif code not in codes:
                codes.append(code)
        if unknown:
            listed = ", ".join(repr(u) for u in unknown)
            raise RecordError(f"unknown category {listed} (not in taxonomy {self.label})")
        return codes


@dataclass
class ParseContext:
    errors: ErrorLog
    categories: CategoryMap
    max_line_bytes: int
    ignored: int = 0  # records deliberately not imported (e.g. Aegis REDACTED prompts)
    records_read: int = 0  # source records (lines / rows / trees) read
    options: dict = field(default_factory=dict)  # the batch's format options (csv-raters: {"mapping": ...})


def _norm(text: str) -> str:
    return " ".join(str(text).casefold().split())


def json_error(exc: orjson.JSONDecodeError) -> str:
    """orjson's message without its "line 1 column N (char M)" tail: the line is ours to name."""
    return f"invalid JSON: {exc.msg} at character {exc.pos + 1}"


def kind_of(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def check_text(value: str, what: str) -> str:
    if "\x00" in value:
        raise RecordError(f"{what} contains a NUL character (\\u0000), which cannot be stored")
    return value


def check_json(value: Any, what: str) -> Any:
    if b"\\u0000" in orjson.dumps(value):
        raise RecordError(f"{what} contains a NUL character (\\u0000), which cannot be stored")
    return value


def safety_label(value: Any, what: str) -> str:
    if not isinstance(value, str) or _norm(value).replace("_", " ").replace("-", " ") not in SAFETY_LABELS:
        raise RecordError(f"{what} must be safe, needs_caution or unsafe, got {value!r}")
    return SAFETY_LABELS[_norm(value).replace("_", " ").replace("-", " ")]


def checked_prompt(value: Any) -> list[dict]:
    """A prompt as a message list: a non-empty string, or ``[{"role", "content"}, ...]``."""
    if value is None or value == "" or value == []:
        raise RecordError("missing prompt")
    if isinstance(value, str):
        if not value.strip():
            raise RecordError("missing prompt (it is blank)")
        return [{"role": "user", "content": check_text(value, "prompt")}]
    if not isinstance(value, list):
        raise RecordError(f"prompt must be a string or a list of messages, got {kind_of(value)}")
    messages = []
    for n, message in enumerate(value):
        if not isinstance(message, dict):
            raise RecordError(f"prompt message {n} must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise RecordError(f"prompt message {n} has role {role!r}; expected system, user or assistant")
        if not isinstance(content, str):
            raise RecordError(f"prompt message {n} has no text content")
        messages.append({"role": role, "content": check_text(content, f"prompt message {n}")})
    if not any(m["content"].strip() for m in messages):
        raise RecordError("missing prompt (all messages are blank)")
    return messages


def checked_metadata(value: Any) -> dict:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"metadata must be an object, got {kind_of(value)}")
    return check_json(value, "metadata")


def checked_external_id(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(f"id must be a string or an integer, got {kind_of(value)}")
    text = str(value).strip()
    if len(text) > MAX_EXTERNAL_ID:
        raise RecordError(f"id is longer than {MAX_EXTERNAL_ID} characters")
    return check_text(text, "id")


def checked_rater(value: Any, what: str) -> str:
    """A rater id: a non-empty string or an integer (kept as its text)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordError(f"{what} has no rater id")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(f"{what}: rater must be a string or an integer, got {kind_of(value)}")
    text = str(value).strip()
    if len(text) > MAX_RATER:
        raise RecordError(f"{what}: rater id is longer than {MAX_RATER} characters")
    return check_text(text, f"{what} rater")


def checked_model_name(value: Any, n: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"response {n} model must be a string")
    if len(value) > MAX_MODEL_NAME:
        raise RecordError(f"response {n} model name is longer than {MAX_MODEL_NAME} characters")
    return check_text(value, f"response {n} model")
