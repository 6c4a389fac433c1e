"""Parsing the workbench's HTML forms into :class:`Judgment` objects, and back into what the form shows.

The form works without JavaScript: every response has a rank ``<select>`` (equal ranks make a tie),
safety radios and category checkboxes; the keyboard and drag code only set those same fields.
Whether a judgment is acceptable is decided by the service, not here: this module only turns
strings into typed values and reports values that are not even well-formed.

Field names:
``item``, ``idempotency_key``, ``rank-<response id>``, ``pair_choice`` (a | b | tie),
``pair_strength`` (1 | 2 | 3), ``prompt_label``, ``prompt_cat`` (repeated), ``label-<response id>``,
``cat-<response id>`` (repeated), ``principle`` (repeated ids), ``principles_conflicted``,
``rationale``, ``confidence`` (1-5).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.http import QueryDict

from annotation.judgments import MAX_CATEGORIES, MAX_PRINCIPLES
from annotation.models import Response
from annotation.workbench.judgments import Judgment, ResponseLabel


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass
class ResponseState:
    response: Response
    letter: str
    rank: str = ""
    label: str = ""
    categories: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    rank_missing: bool = False  # a ranking error and no rank given here: the card is highlighted

    @property
    def has_error(self) -> bool:
        return bool(self.errors) or self.rank_missing

    @property
    def anchor(self) -> str:
        return f"response-{self.letter}"

    @property
    def category_field(self) -> str:
        return f"cat-{self.response.pk}"

    @property
    def whose(self) -> str:
        return f"response {self.letter}"


@dataclass
class FormState:
    """What the form shows: empty for a fresh item, the posted values after an error."""

    responses: list[ResponseState]
    pair_choice: str = ""
    pair_strength: str = ""
    prompt_label: str = ""
    prompt_categories: set[str] = field(default_factory=set)
    principles: set[int] = field(default_factory=set)
    principles_conflicted: bool = False
    rationale: str = ""
    confidence: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def general_errors(self) -> list[str]:
        per_response = {f"label-{r.response.pk}" for r in self.responses}
        return [m for k, msgs in self.errors.items() if k not in per_response for m in msgs]

    @property
    def banner(self) -> list[BannerError]:
        """Every error, in the order of the form, for the banner at the top: per-response ones named by
        the response's letter (never its database id), each with the id of what it is about."""
        by_field = dict(self.errors)
        out: list[BannerError] = []
        for key in ("ranking", "pair_choice", "pair_strength"):
            target = "preference" if key.startswith("pair") else self._first_rank_error_anchor()
            out += [BannerError(m, target) for m in by_field.pop(key, [])]
        for s in self.responses:
            out += [BannerError(f"Response {s.letter}: {m}", s.anchor) for m in by_field.pop(f"label-{s.response.pk}", [])]
        for key, target in _FIELD_TARGETS:
            out += [BannerError(m, target) for m in by_field.pop(key, [])]
        out += [BannerError(m, "judgment") for msgs in by_field.values() for m in msgs]
        return out

    def _first_rank_error_anchor(self) -> str:
        return next((s.anchor for s in self.responses if s.rank_missing), "responses")


@dataclass(frozen=True)
class BannerError:
    message: str
    target: str  # the id of the element the error is about (the banner links to it; the page focuses it)


# Where the errors of the form's other fields point, in the order the form shows them.
_FIELD_TARGETS = (
    ("prompt_label", "prompt-safety"), ("response_labels", "responses"), ("principles", "principles"),
    ("rationale", "rationale"), ("confidence", "confidence"),
)


LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def form_state(responses: list[Response], data: QueryDict | None, *, default_label: str = "") -> FormState:
    """The form's values: from ``data`` (a re-shown POST) or fresh. Nothing is pre-selected unless
    ``default_label`` is given (a project's opt-in ``preselect_safe``)."""
    states = [ResponseState(response=r, letter=LETTERS[i % 26], label=default_label) for i, r in enumerate(responses)]
    if data is None:
        return FormState(responses=states)
    for s in states:
        rid = s.response.pk
        s.rank = data.get(f"rank-{rid}", "")
        s.label = data.get(f"label-{rid}", "")
        s.categories = set(data.getlist(f"cat-{rid}"))
    return FormState(
        responses=states,
        pair_choice=data.get("pair_choice", ""),
        pair_strength=data.get("pair_strength", ""),
        prompt_label=data.get("prompt_label", ""),
        prompt_categories=set(data.getlist("prompt_cat")),
        principles={p for p in (_int(v) for v in data.getlist("principle")) if p is not None},
        principles_conflicted=bool(data.get("principles_conflicted")),
        rationale=data.get("rationale", ""),
        confidence=data.get("confidence", ""),
    )


def attach_errors(state: FormState, errors: dict[str, list[str]]) -> FormState:
    state.errors = errors
    for s in state.responses:
        s.errors = errors.get(f"label-{s.response.pk}", [])
        s.rank_missing = "ranking" in errors and not s.rank
    return state


def judgment_from_post(data: QueryDict, *, response_ids: list[int], mode: str) -> tuple[Judgment, dict[str, list[str]]]:
    """Parse the posted form. Returns the judgment and the errors of malformed values."""
    errors: dict[str, list[str]] = {}
    ranking = None
    if mode in ("ranking", "ranking_safety"):
        ranks: dict[int, int] = {}
        for rid in response_ids:
            raw = data.get(f"rank-{rid}", "")
            value = _int(raw)
            if raw and (value is None or value < 1):
                errors["ranking"] = ["A rank is a whole number from 1."]
            elif value is not None:
                ranks[rid] = value
        if ranks:
            # Equal rank numbers are a tie; gaps are fine (1, 1, 3 means a tie for first).
            # Unranked responses are left out; the service names them in its error.
            ranking = [[rid for rid in response_ids if ranks.get(rid) == v] for v in sorted(set(ranks.values()))]
    response_labels = {}
    if mode in ("safety", "ranking_safety"):
        for rid in response_ids:
            label = data.get(f"label-{rid}", "")
            cats = data.getlist(f"cat-{rid}")
            if len(cats) > MAX_CATEGORIES:
                errors[f"label-{rid}"] = [f"At most {MAX_CATEGORIES} categories."]
                continue
            if label:
                response_labels[rid] = ResponseLabel(label=label, categories=tuple(cats))
    strength_raw = data.get("pair_strength", "")
    strength = _int(strength_raw)
    if strength_raw and strength is None:
        errors["pair_strength"] = ["Strength is 1, 2 or 3."]
    confidence_raw = data.get("confidence", "")
    confidence = _int(confidence_raw)
    if confidence_raw and confidence is None:
        errors["confidence"] = ["Confidence is a whole number from 1 to 5."]
    principle_raw = data.getlist("principle")
    if len(principle_raw) > MAX_PRINCIPLES:
        errors["principles"] = [f"At most {MAX_PRINCIPLES} principles."]
        principle_raw = []
    prompt_cats = data.getlist("prompt_cat")
    if len(prompt_cats) > MAX_CATEGORIES:
        errors["prompt_label"] = [f"At most {MAX_CATEGORIES} categories."]
        prompt_cats = []
    principles = tuple(p for p in (_int(v) for v in principle_raw) if p is not None)
    if len(principles) != len(principle_raw):
        errors["principles"] = ["Unknown principle."]
    judgment = Judgment(
        ranking=ranking,
        pair_choice=data.get("pair_choice", "") if mode == "pairwise" else "",
        # A tie posted with a strength keeps it, so the rules refuse it ("tie" and "much better" contradict).
        pair_strength=strength if mode == "pairwise" else None,
        prompt_label=data.get("prompt_label", "") if mode in ("safety", "ranking_safety") else "",
        prompt_categories=tuple(prompt_cats) if mode in ("safety", "ranking_safety") else (),
        response_labels=response_labels,
        principles=principles,
        principles_conflicted=bool(data.get("principles_conflicted")),
        rationale=data.get("rationale", ""),
        confidence=confidence,
    )
    return judgment, errors
