"""``tribunal``: the own JSONL format (``{"id", "prompt", "responses", "metadata"}`` and the
optional judgment keys ``ranking``, ``preference``, ``safety``, ``source``)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from annotation.importing.formats.lines import guarded, json_objects
from annotation.importing.formats.records import (
    MAX_RESPONSES,
    ParseContext,
    Record,
    RecordError,
    ResponseIn,
    check_text,
    checked_external_id,
    checked_metadata,
    checked_model_name,
    checked_prompt,
    kind_of,
    safety_label,
)
from annotation.judgments import (
    category_problems,
    pair_strength_valid,
    ranking_gaps,
    rules_for,
    unlabelled_responses,
)
from annotation.models import Annotation

# The judgment rules every source shares, with the import's declared leniency (partial labels,
# categories on any label: see annotation.judgments.IMPORT_RULES for why).
RULES = rules_for(Annotation.Source.IMPORT)


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
    prompt = checked_prompt(obj.get("prompt"))
    raw_responses = obj.get("responses")
    if raw_responses is None or raw_responses == []:
        raise RecordError("no responses")
    if not isinstance(raw_responses, list):
        raise RecordError(f"responses must be a list, got {kind_of(raw_responses)}")
    if len(raw_responses) > MAX_RESPONSES:
        raise RecordError(f"more than {MAX_RESPONSES} responses")
    responses: list[ResponseIn] = []
    response_ids: dict[str, int] = {}
    for n, raw in enumerate(raw_responses):
        text: object  # checked below: a non-empty string
        if isinstance(raw, str):
            text, model, rid, meta = raw, "", None, {}
        elif isinstance(raw, dict):
            text, model, rid = raw.get("text"), checked_model_name(raw.get("model"), n), raw.get("id")
            meta = checked_metadata(raw.get("metadata"))
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
        responses.append(ResponseIn(text=check_text(text, f"response {n}"), model=model, metadata=meta))

    record = Record(
        line=line,
        prompt=prompt,
        responses=responses,
        external_id=checked_external_id(obj.get("id")),
        metadata=checked_metadata(obj.get("metadata")),
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
        # Placing a response twice was refused above, naming it as the file does.
        missing = ranking_gaps(groups, list(range(len(responses)))).missing
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
        if strength is None or not pair_strength_valid(choice, strength):
            if choice == "tie":
                raise RecordError("a tie has strength 0")
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
            _check_categories(record.prompt_label, record.prompt_categories, "safety prompt_categories")
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
            codes = ctx.categories.resolve(cats)
            _check_categories(label, codes, f"safety categories of response {n}")
            record.response_safety.append((n, label, codes))
        if not record.prompt_label and not record.response_safety:
            raise RecordError("safety has neither a prompt_label nor response labels")
        unlabelled = unlabelled_responses(
            list(range(len(responses))), {n for n, _label, _codes in record.response_safety}, rules=RULES
        )
        if unlabelled:
            raise RecordError(f"safety labels no response {', '.join(map(str, unlabelled))}")
    return record


def _check_categories(label: str, codes: list[str], what: str) -> None:
    # The parser does not know the project's require_category_when_unsafe: RULES decide alone.
    problems = category_problems(label, codes, rules=RULES, project_requires=True)
    if problems:
        raise RecordError(f"{what}: {' '.join(problems)}")


def parse_tribunal(lines, ctx: ParseContext) -> Iterator[Record]:
    return guarded(json_objects(lines, ctx), parse_tribunal_object, ctx)
