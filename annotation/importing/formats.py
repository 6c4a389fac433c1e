"""One parser per import format. Each turns numbered lines into normalised ``Record``s.

A parser never raises on bad input: it adds ``(line, reason)`` to the ``ErrorLog`` and moves on,
so that one run over a file lists every problem. Records carry the line they came from (for an
oasst tree, every record of the tree carries the tree's line).

Formats
-------
``tribunal``  own JSONL: ``{"id", "prompt", "responses", "metadata", "ranking"?, "preference"?,
              "safety"?}`` (see ``parse_tribunal_object`` for the optional judgment keys).
``csv``       the same columns as CSV: ``id,prompt,responses,metadata`` (+ optional ``ranking``,
              ``preference``, ``safety``); ``responses``/``metadata``/judgments are JSON in a cell.
``hh-rlhf``   Anthropic HH-RLHF ``{"chosen", "rejected"}`` transcripts (``.jsonl`` or ``.jsonl.gz``).
``oasst``     OpenAssistant ``message_tree`` JSONL (one tree a line).
``aegis``     Aegis 2.0 rows (CSV or JSONL): ``prompt, response, prompt_label, response_label,
              violated_categories``; or the shared subset layout ``id, prompt, category, domain,
              task, instruct_response`` (an unsafe prompt with that category and a safe reply).
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from annotation.importing.reader import ErrorLog

# Field limits of the data model (annotation/models.py).
MAX_EXTERNAL_ID = 255
MAX_MODEL_NAME = 200
MAX_RESPONSES = 1000  # position is a small integer; a ranking of more is not judgeable anyway
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
class Record:
    """One future Item with its Responses and (optionally) one imported Annotation.

    ``ranking`` holds tie groups of response *indexes*, best first; ``pair`` is
    ``(a_index, b_index, choice, strength)``; ``response_safety`` is ``[(index, label, codes)]``.
    """

    line: int
    prompt: list[dict]
    responses: list[ResponseIn]
    external_id: str = ""
    metadata: dict = field(default_factory=dict)
    ranking: list[list[int]] | None = None
    pair: tuple[int, int, str, int] | None = None
    prompt_label: str = ""
    prompt_categories: list[str] = field(default_factory=list)
    response_safety: list[tuple[int, str, list[str]]] = field(default_factory=list)
    source_detail: str = ""

    @property
    def has_annotation(self) -> bool:
        return bool(self.ranking or self.pair or self.prompt_label or self.response_safety)


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
                raise RecordError(f"category must be a string, got {_kind(name)}")
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


def _norm(text: str) -> str:
    return " ".join(str(text).casefold().split())


def json_error(exc: orjson.JSONDecodeError) -> str:
    """orjson's message without its "line 1 column N (char M)" tail: the line is ours to name."""
    return f"invalid JSON: {exc.msg} at character {exc.pos + 1}"


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _check_text(value: str, what: str) -> str:
    if "\x00" in value:
        raise RecordError(f"{what} contains a NUL character (\\u0000), which cannot be stored")
    return value


def _check_json(value: Any, what: str) -> Any:
    if b"\\u0000" in orjson.dumps(value):
        raise RecordError(f"{what} contains a NUL character (\\u0000), which cannot be stored")
    return value


def safety_label(value: Any, what: str) -> str:
    if not isinstance(value, str) or _norm(value).replace("_", " ").replace("-", " ") not in SAFETY_LABELS:
        raise RecordError(f"{what} must be safe, needs_caution or unsafe, got {value!r}")
    return SAFETY_LABELS[_norm(value).replace("_", " ").replace("-", " ")]


def _prompt(value: Any) -> list[dict]:
    """A prompt as a message list: a non-empty string, or ``[{"role", "content"}, ...]``."""
    if value is None or value == "" or value == []:
        raise RecordError("missing prompt")
    if isinstance(value, str):
        if not value.strip():
            raise RecordError("missing prompt (it is blank)")
        return [{"role": "user", "content": _check_text(value, "prompt")}]
    if not isinstance(value, list):
        raise RecordError(f"prompt must be a string or a list of messages, got {_kind(value)}")
    messages = []
    for n, message in enumerate(value):
        if not isinstance(message, dict):
            raise RecordError(f"prompt message {n} must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise RecordError(f"prompt message {n} has role {role!r}; expected system, user or assistant")
        if not isinstance(content, str):
            raise RecordError(f"prompt message {n} has no text content")
        messages.append({"role": role, "content": _check_text(content, f"prompt message {n}")})
    if not any(m["content"].strip() for m in messages):
        raise RecordError("missing prompt (all messages are blank)")
    return messages


def _metadata(value: Any) -> dict:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"metadata must be an object, got {_kind(value)}")
    return _check_json(value, "metadata")


def _external_id(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(f"id must be a string or an integer, got {_kind(value)}")
    text = str(value).strip()
    if len(text) > MAX_EXTERNAL_ID:
        raise RecordError(f"id is longer than {MAX_EXTERNAL_ID} characters")
    return _check_text(text, "id")


def _model_name(value: Any, n: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"response {n} model must be a string")
    if len(value) > MAX_MODEL_NAME:
        raise RecordError(f"response {n} model name is longer than {MAX_MODEL_NAME} characters")
    return _check_text(value, f"response {n} model")


# --- Own format -----------------------------------------------------------------------------------


def parse_tribunal_object(obj: dict, line: int, ctx: ParseContext) -> Record:
    """Validate one own-format object.

    Optional judgment keys (stored as ONE imported annotation of the item):

    - ``"ranking"``: tie groups best first, of response indexes or of the ``id``s given in the
      response objects: ``[[0], [2, 1]]`` or ``["r1", ["r2", "r3"]]``. Every response once.
    - ``"preference"``: ``{"a": 0, "b": 1, "choice": "a"|"b"|"tie", "strength": 0..3}``
      (strength defaults to 2 "better", or 0 for a tie).
    - ``"safety"``: ``{"prompt_label": "unsafe", "prompt_categories": ["Violence"],
      "responses": [{"label": "safe", "categories": []}, null, ...]}`` (one entry per response,
      null for "not labelled"); categories by code, name or alias of the project's taxonomy.
    - ``"source"``: recorded as the annotation's ``source_detail`` (default ``"tribunal"``).
    """
    prompt = _prompt(obj.get("prompt"))
    raw_responses = obj.get("responses")
    if raw_responses is None or raw_responses == []:
        raise RecordError("no responses")
    if not isinstance(raw_responses, list):
        raise RecordError(f"responses must be a list, got {_kind(raw_responses)}")
    if len(raw_responses) > MAX_RESPONSES:
        raise RecordError(f"more than {MAX_RESPONSES} responses")
    responses: list[ResponseIn] = []
    response_ids: dict[str, int] = {}
    for n, raw in enumerate(raw_responses):
        if isinstance(raw, str):
            text, model, rid, meta = raw, "", None, {}
        elif isinstance(raw, dict):
            text, model, rid = raw.get("text"), _model_name(raw.get("model"), n), raw.get("id")
            meta = _metadata(raw.get("metadata"))
            if rid is not None:
                rid = str(rid)
                if rid in response_ids:
                    raise RecordError(f"response id {rid!r} is used twice")
                response_ids[rid] = n
                meta = {**meta, "id": rid}
        else:
            raise RecordError(f"response {n} must be a string or an object with text")
        if not isinstance(text, str) or not text.strip():
            raise RecordError(f"response {n} has no text")
        responses.append(ResponseIn(text=_check_text(text, f"response {n}"), model=model, metadata=meta))

    record = Record(
        line=line,
        prompt=prompt,
        responses=responses,
        external_id=_external_id(obj.get("id")),
        metadata=_metadata(obj.get("metadata")),
        source_detail=str(obj.get("source") or "tribunal")[:200],
    )

    def index_of(ref: Any) -> int:
        if isinstance(ref, bool):
            raise RecordError(f"names an unknown response {ref!r}")
        if isinstance(ref, int):
            if 0 <= ref < len(responses):
                return ref
            raise RecordError(f"names an unknown response {ref} (there are {len(responses)} responses, from 0)")
        if isinstance(ref, str) and ref in response_ids:
            return response_ids[ref]
        raise RecordError(f"names an unknown response {ref!r}")

    ranking = obj.get("ranking")
    if ranking is not None:
        if not isinstance(ranking, list) or not ranking:
            raise RecordError("ranking must be a non-empty list of tie groups")
        groups: list[list[int]] = []
        placed: set[int] = set()
        for group in ranking:
            members = group if isinstance(group, list) else [group]
            if not members:
                raise RecordError("ranking has an empty tie group")
            indexes = []
            for ref in members:
                try:
                    idx = index_of(ref)
                except RecordError as exc:
                    raise RecordError(f"ranking {exc}") from None
                if idx in placed:
                    raise RecordError(f"ranking places response {ref!r} twice")
                placed.add(idx)
                indexes.append(idx)
            groups.append(indexes)
        missing = [i for i in range(len(responses)) if i not in placed]
        if missing:
            raise RecordError(f"ranking does not place response(s) {', '.join(map(str, missing))}")
        if len(responses) < 2:
            raise RecordError("a ranking needs at least two responses")
        record.ranking = groups

    pref = obj.get("preference")
    if pref is not None:
        if not isinstance(pref, dict):
            raise RecordError("preference must be an object with a, b, choice and strength")
        try:
            a, b = index_of(pref.get("a")), index_of(pref.get("b"))
        except RecordError as exc:
            raise RecordError(f"preference {exc}") from None
        if a == b:
            raise RecordError("preference compares a response with itself")
        choice = pref.get("choice")
        if choice not in ("a", "b", "tie"):
            raise RecordError(f"preference choice must be a, b or tie, got {choice!r}")
        strength = pref.get("strength", 0 if choice == "tie" else 2)
        if choice == "tie" and strength != 0:
            raise RecordError("a tie has strength 0")
        if choice != "tie" and (isinstance(strength, bool) or strength not in (1, 2, 3)):
            raise RecordError(f"preference strength must be 1, 2 or 3, got {strength!r}")
        record.pair = (a, b, choice, int(strength))

    safety = obj.get("safety")
    if safety is not None:
        if not isinstance(safety, dict):
            raise RecordError("safety must be an object")
        if safety.get("prompt_label") not in (None, ""):
            record.prompt_label = safety_label(safety["prompt_label"], "safety prompt_label")
            cats = safety.get("prompt_categories") or []
            if not isinstance(cats, list):
                raise RecordError("safety prompt_categories must be a list")
            record.prompt_categories = ctx.categories.resolve(cats)
        per_response = safety.get("responses") or []
        if not isinstance(per_response, list) or len(per_response) > len(responses):
            raise RecordError("safety responses must be a list with at most one entry per response")
        for n, entry in enumerate(per_response):
            if entry is None:
                continue
            if not isinstance(entry, dict):
                raise RecordError(f"safety of response {n} must be an object with a label")
            label = safety_label(entry.get("label"), f"safety label of response {n}")
            cats = entry.get("categories") or []
            if not isinstance(cats, list):
                raise RecordError(f"safety categories of response {n} must be a list")
            record.response_safety.append((n, label, ctx.categories.resolve(cats)))
        if not record.prompt_label and not record.response_safety:
            raise RecordError("safety has neither a prompt_label nor response labels")
    return record


# --- Line and row helpers -------------------------------------------------------------------------


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
            ctx.errors.add(line, f"expected a JSON object, got {_kind(obj)}")
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


def _guarded(items: Iterable[tuple[int, Any]], build, ctx: ParseContext) -> Iterator[Record]:
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


def _first_content(lines: list[tuple[int, str | None]]) -> str:
    for _line, text in lines:
        if text and text.strip():
            return text.lstrip()
    return ""


# --- Parsers ------------------------------------------------------------------------------------


def parse_tribunal(lines, ctx: ParseContext) -> Iterator[Record]:
    return _guarded(json_objects(lines, ctx), parse_tribunal_object, ctx)


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
    for column in ("responses", "metadata", "ranking", "preference", "safety"):
        cell = (row.get(column) or "").strip()
        if not cell:
            continue
        try:
            obj[column] = orjson.loads(cell)
        except orjson.JSONDecodeError as exc:
            raise RecordError(f"column {column}: {json_error(exc)}") from None
    return parse_tribunal_object(obj, line, ctx)


def parse_csv(lines, ctx: ParseContext) -> Iterator[Record]:
    return _guarded(csv_rows(lines, ctx), _tribunal_from_csv, ctx)


_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")
_HH_ASSISTANT = "\n\nAssistant:"


def hh_split(chosen: str, rejected: str) -> tuple[list[dict], str, str]:
    """Split an HH-RLHF pair into (prompt messages, chosen reply, rejected reply).

    The prompt is the longest shared prefix of the two transcripts cut back to its last
    ``"\\n\\nAssistant:"`` (a few transcripts have an extra ``Assistant:`` inside one reply, so the
    last marker of ``chosen`` alone is not always shared); the replies are what follows.
    """
    limit = min(len(chosen), len(rejected))
    k = 0
    # Compare in blocks first: transcripts share long prefixes.
    step = 256
    while k + step <= limit and chosen[k : k + step] == rejected[k : k + step]:
        k += step
    while k < limit and chosen[k] == rejected[k]:
        k += 1
    # The last marker lying entirely inside the shared prefix.
    cut = chosen.rfind(_HH_ASSISTANT, 0, k)
    if cut < 0:
        raise RecordError("chosen and rejected share no conversation up to an Assistant turn")
    end = cut + len(_HH_ASSISTANT)
    prefix = chosen[:cut]
    parts = _HH_TURN.split(prefix)
    # parts: [text before first marker, role, text, role, text, ...]
    if parts[0].strip():
        raise RecordError('transcript must start with "\\n\\nHuman: "')
    messages = []
    for role, text in zip(parts[1::2], parts[2::2]):
        messages.append({"role": "user" if role == "Human" else "assistant", "content": text.strip()})
    if not messages or not any(m["role"] == "user" for m in messages):
        raise RecordError("the conversation has no Human turn before the last Assistant turn")
    return messages, chosen[end:].strip(), rejected[end:].strip()


def _hh_record(obj: dict, line: int, ctx: ParseContext) -> Record:
    chosen, rejected = obj.get("chosen"), obj.get("rejected")
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise RecordError("HH-RLHF rows need chosen and rejected transcripts (strings)")
    messages, good, bad = hh_split(chosen, rejected)
    for m in messages:
        _check_text(m["content"], "prompt")
    # An empty final Assistant turn is kept as an empty response: it is what the model said
    # (4 pairs of the harmless-base test split have one), and the human still preferred one side.
    return Record(
        line=line,
        prompt=messages,
        responses=[ResponseIn(_check_text(good, "chosen")), ResponseIn(_check_text(bad, "rejected"))],
        # HH-RLHF has no strength: the human picked the better one, stored as 2 ("better").
        pair=(0, 1, "a", 2),
        source_detail="hh-rlhf",
    )


def parse_hh_rlhf(lines, ctx: ParseContext) -> Iterator[Record]:
    return _guarded(json_objects(lines, ctx), _hh_record, ctx)


def _oasst_records(obj: dict, line: int, ctx: ParseContext) -> list[Record]:
    """Walk one message tree. Every prompter message with two or more assistant replies that have
    a non-null ``rank`` becomes one record: the prompt is the path from the root to that message,
    the responses are the ranked replies (in file order), the ranking groups them by ``rank``
    ascending (0 = best; equal ranks tie). Unranked replies (``rank`` null) are left out: they were
    never compared with the others, so putting them in the item would invent a judgment. Deleted
    messages are left out too."""
    root = obj.get("prompt")
    if not isinstance(root, dict) or "replies" not in root:
        raise RecordError("oasst trees need a prompt message with replies (message_tree JSONL)")
    tree_id = obj.get("message_tree_id") or root.get("message_id") or ""
    records: list[Record] = []
    # Iterative walk: (message, path of messages before it)
    stack: list[tuple[dict, list[dict]]] = [(root, [])]
    while stack:
        message, path = stack.pop()
        if not isinstance(message, dict):
            raise RecordError("a message in the tree is not an object")
        role, text = message.get("role"), message.get("text")
        if role not in ("prompter", "assistant") or not isinstance(text, str):
            raise RecordError(f"message {message.get('message_id')!r} needs role prompter/assistant and text")
        here = [*path, {"role": "user" if role == "prompter" else "assistant", "content": _check_text(text, "message")}]
        replies = [r for r in (message.get("replies") or []) if isinstance(r, dict) and not r.get("deleted")]
        if role == "prompter":
            ranked = [r for r in replies if r.get("role") == "assistant" and r.get("rank") is not None]
            if len(ranked) >= 2:
                for r in ranked:
                    if isinstance(r["rank"], bool) or not isinstance(r["rank"], int):
                        raise RecordError(f"reply {r.get('message_id')!r} has a non-integer rank {r['rank']!r}")
                    if not isinstance(r.get("text"), str) or not r["text"].strip():
                        raise RecordError(f"reply {r.get('message_id')!r} has no text")
                ranks = sorted({r["rank"] for r in ranked})
                groups = [[i for i, r in enumerate(ranked) if r["rank"] == rank] for rank in ranks]
                message_id = _external_id(message.get("message_id"))
                records.append(
                    Record(
                        line=line,
                        prompt=here,
                        responses=[
                            ResponseIn(
                                text=_check_text(r["text"], "reply"),
                                model=_model_name(r.get("model_name"), i),
                                metadata={"oasst_message_id": r.get("message_id"), "rank": r["rank"]},
                            )
                            for i, r in enumerate(ranked)
                        ],
                        external_id=message_id,
                        metadata={"oasst": {"message_tree_id": tree_id, "message_id": message_id,
                                            "lang": message.get("lang")}},
                        ranking=groups,
                        source_detail="oasst",
                    )
                )
        for reply in reversed(replies):
            stack.append((reply, here))
    # Depth-first, replies pushed in reverse: records come out in document (pre-)order.
    return records


def parse_oasst(lines, ctx: ParseContext) -> Iterator[Record]:
    return _guarded(json_objects(lines, ctx), _oasst_records, ctx)


def _text_cell(row: dict, key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{key} must be text, got {_kind(value)}")
    return value


def _aegis_categories(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise RecordError(f"violated_categories must be a comma-separated string or a list, got {_kind(value)}")
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
        responses.append(ResponseIn(text=_check_text(reply, "instruct_response")))
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
        if reply is not None and reply.strip():
            responses.append(ResponseIn(text=_check_text(reply, "response")))
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
        prompt=[{"role": "user", "content": _check_text(prompt_text, "prompt")}],
        responses=responses,
        metadata=_check_json(meta, "metadata"),
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
        return _guarded(json_objects(rest, ctx), _aegis_record, ctx)
    return _guarded(csv_rows(rest, ctx), _aegis_record, ctx)


def _chain(head: list, tail: Iterator) -> Iterator:
    yield from head
    yield from tail


PARSERS = {
    "tribunal": parse_tribunal,
    "csv": parse_csv,
    "hh-rlhf": parse_hh_rlhf,
    "oasst": parse_oasst,
    "aegis": parse_aegis,
}
