"""``tribunal``: the own JSONL format (``{"id", "prompt", "responses", "metadata"}`` and the
optional judgment keys ``ranking``, ``preference``, ``safety``, ``source``, and ``annotations`` for
several raters' judgments with rater ids)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from annotation.importing.formats.lines import guarded, json_objects
from annotation.importing.formats.records import (
    MAX_RESPONSES,
    ParseContext,
    Rating,
    Record,
    RecordError,
    ResponseIn,
    check_text,
    checked_external_id,
    checked_metadata,
    checked_model_name,
    checked_prompt,
    checked_rater,
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

    Optional judgment keys (stored as ONE imported annotation of the item, without a rater id):

    - ``"ranking"``: tie groups best first, of response indexes or of the ``id``s given in the
      response objects: ``[[0], [2, 1]]`` or ``["r1", ["r2", "r3"]]``. Every response once.
    - ``"preference"``: ``{"a": 0, "b": 1, "choice": "a"|"b"|"tie", "strength": 0..3}``
      (a tie has strength 0; a preference without a strength is stored without one, not as a default).
    - ``"safety"``: ``{"prompt_label": "unsafe", "prompt_categories": ["Violence"],
      "responses": [{"label": "safe", "categories": []}, null, ...]}`` (one entry per response,
      null for "not labelled"); categories by code, name or alias of the project's taxonomy.
    - ``"source"``: recorded as the annotation's ``source_detail`` (default ``"tribunal"``).
    - ``"annotations"``: several raters' judgments, each stored as its own imported annotation with
      the rater's id (see ``_ratings``); may stand beside the single form above.
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

    if obj.get("ranking") is not None:
        record.ranking = _ranking(obj["ranking"], index_of, len(responses), "ranking")
    if obj.get("preference") is not None:
        record.pair = _pair(obj["preference"], index_of, "preference")
    safety = obj.get("safety")
    if safety is not None:
        if not isinstance(safety, dict):
            raise RecordError("safety must be an object")
        record.prompt_label, record.prompt_categories = _prompt_safety(
            safety.get("prompt_label"), safety.get("prompt_categories"), ctx,
            label_what="safety prompt_label", categories_what="safety prompt_categories", lone_categories_ok=True,
        )
        record.response_safety = _response_safety(safety.get("responses"), len(responses), ctx, "safety")
        if not record.prompt_label and not record.response_safety:
            raise RecordError("safety has neither a prompt_label nor response labels")
    annotations = obj.get("annotations")
    if annotations is not None:
        record.ratings = _ratings(annotations, index_of, len(responses), ctx)
    return record


# The keys of one entry of "annotations" (a named rater's judgment).
RATER_KEYS = {"rater", "label", "categories", "responses", "ranking", "preference"}


def _ratings(annotations: Any, index_of, n_responses: int, ctx: ParseContext) -> list[Rating]:
    """``"annotations": [{"rater": "r3", "label": "unsafe", "categories": [...], "responses": [...],
    "ranking": [...], "preference": {...}}, ...]``: one imported annotation per rater. ``label`` and
    ``categories`` judge the prompt; ``responses`` holds one ``{"label", "categories"}`` (or null)
    per response; ``ranking`` and ``preference`` are as at the top level. A rater appears once."""
    if not isinstance(annotations, list):
        raise RecordError(f"annotations must be a list of objects with a rater, got {kind_of(annotations)}")
    ratings: list[Rating] = []
    seen: set[str] = set()
    for n, entry in enumerate(annotations):
        where = f"annotations[{n}]"
        if not isinstance(entry, dict):
            raise RecordError(f"{where} must be an object with a rater and a label, got {kind_of(entry)}")
        rater = checked_rater(entry.get("rater"), where)
        if rater in seen:
            raise RecordError(f"{where}: rater {rater!r} has two entries for this item")
        seen.add(rater)
        where = f"{where} (rater {rater!r})"
        unknown = sorted(set(entry) - RATER_KEYS)
        if unknown:
            raise RecordError(f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; "
                              f"expected {', '.join(sorted(RATER_KEYS))}")
        rating = Rating(rater=rater)
        try:
            rating.prompt_label, rating.prompt_categories = _prompt_safety(
                entry.get("label"), entry.get("categories"), ctx, label_what="label", categories_what="categories",
            )
            rating.response_safety = _response_safety(entry.get("responses"), n_responses, ctx, "")
            if entry.get("ranking") is not None:
                rating.ranking = _ranking(entry["ranking"], index_of, n_responses, "ranking")
            if entry.get("preference") is not None:
                rating.pair = _pair(entry["preference"], index_of, "preference")
        except RecordError as exc:
            raise RecordError(f"{where}: {exc}") from None
        if not (rating.prompt_label or rating.response_safety or rating.ranking or rating.pair):
            raise RecordError(f"{where} has no judgment (label, responses, ranking or preference)")
        ratings.append(rating)
    return ratings


def _ranking(ranking: Any, index_of, n_responses: int, what: str) -> list[list[int]]:
    if not isinstance(ranking, list) or not ranking:
        raise RecordError(f"{what} must be a non-empty list of tie groups")
    groups: list[list[int]] = []
    placed: set[int] = set()
    for group in ranking:
        members = group if isinstance(group, list) else [group]
        if not members:
            raise RecordError(f"{what} has an empty tie group")
        indexes = []
        for ref in members:
            try:
                idx = index_of(ref)
            except RecordError as exc:
                raise RecordError(f"{what} {exc}") from None
            if idx in placed:
                raise RecordError(f"{what} places response {ref!r} twice")
            placed.add(idx)
            indexes.append(idx)
        groups.append(indexes)
    # Placing a response twice was refused above, naming it as the file does.
    missing = ranking_gaps(groups, list(range(n_responses))).missing
    if missing:
        raise RecordError(f"{what} does not place response(s) {', '.join(map(str, missing))}")
    if n_responses < 2:
        raise RecordError("a ranking needs at least two responses")
    return groups


def _pair(pref: Any, index_of, what: str) -> tuple[int, int, str, int | None]:
    if not isinstance(pref, dict):
        raise RecordError(f"{what} must be an object with a, b, choice and strength")
    try:
        a, b = index_of(pref.get("a")), index_of(pref.get("b"))
    except RecordError as exc:
        raise RecordError(f"{what} {exc}") from None
    if a == b:
        raise RecordError(f"{what} compares a response with itself")
    choice = pref.get("choice")
    if choice not in ("a", "b", "tie"):
        raise RecordError(f"{what} choice must be a, b or tie, got {choice!r}")
    if choice == "tie":
        strength = pref.get("strength", 0)
        if strength is None or not pair_strength_valid(choice, strength):
            raise RecordError("a tie has strength 0")
        return a, b, choice, 0
    # A preference without a strength stays without one: no default is invented (exports give it no margin).
    strength = pref.get("strength")
    if strength is None:
        return a, b, choice, None
    if not pair_strength_valid(choice, strength):
        raise RecordError(f"{what} strength must be 1, 2 or 3, got {strength!r}")
    return a, b, choice, int(strength)


def _prompt_safety(label_value: Any, cats_value: Any, ctx: ParseContext, *, label_what: str,
                   categories_what: str, lone_categories_ok: bool = False) -> tuple[str, list[str]]:
    """The prompt's label and category codes ("" and [] when no label is given). Categories without
    a label are an error, except where the single form always ignored them (``lone_categories_ok``)."""
    if label_value in (None, ""):
        if cats_value and not lone_categories_ok:
            raise RecordError(f"{categories_what} given without a {label_what}")
        return "", []
    label = safety_label(label_value, label_what)
    cats = cats_value or []
    if not isinstance(cats, list):
        raise RecordError(f"{categories_what} must be a list")
    codes = ctx.categories.resolve(cats)
    _check_categories(label, codes, categories_what)
    return label, codes


def _response_safety(per_response: Any, n_responses: int, ctx: ParseContext, prefix: str) -> list[tuple[int, str, list[str]]]:
    """``[{"label", "categories"} | null, ...]``, one entry per response → ``[(index, label, codes)]``.
    ``prefix`` starts the messages (``"safety"`` at the top level, nothing in a rater's entry)."""

    def said(text: str) -> str:
        return f"{prefix} {text}" if prefix else text

    per_response = per_response or []
    if not isinstance(per_response, list) or len(per_response) > n_responses:
        raise RecordError(said("responses must be a list with at most one entry per response"))
    labels: list[tuple[int, str, list[str]]] = []
    for n, entry in enumerate(per_response):
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise RecordError(f"{prefix or 'the entry'} of response {n} must be an object with a label")
        label = safety_label(entry.get("label"), said(f"label of response {n}"))
        cats = entry.get("categories") or []
        if not isinstance(cats, list):
            raise RecordError(said(f"categories of response {n} must be a list"))
        codes = ctx.categories.resolve(cats)
        _check_categories(label, codes, said(f"categories of response {n}"))
        labels.append((n, label, codes))
    unlabelled = unlabelled_responses(list(range(n_responses)), {n for n, _label, _codes in labels}, rules=RULES)
    if unlabelled:
        raise RecordError(f"{prefix or 'the entry'} labels no response {', '.join(map(str, unlabelled))}")
    return labels


def _check_categories(label: str, codes: list[str], what: str) -> None:
    # The parser does not know the project's require_category_when_unsafe: RULES decide alone.
    problems = category_problems(label, codes, rules=RULES, project_requires=True)
    if problems:
        raise RecordError(f"{what}: {' '.join(problems)}")


def parse_tribunal(lines, ctx: ParseContext) -> Iterator[Record]:
    return guarded(json_objects(lines, ctx), parse_tribunal_object, ctx)
