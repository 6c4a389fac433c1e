"""What a judgment is, and the server-side rules it must satisfy before it is stored.

Both the annotator's submit and the adjudicator's decision go through :func:`judgment_validate`, so
the rules cannot drift between the two. The browser and the API only *parse* input into a
:class:`Judgment`; they never decide whether it is acceptable.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from annotation.models import Project, SafetyLabel

MAX_RATIONALE = 10_000
UNSAFE = SafetyLabel.UNSAFE.value
LABELS = set(SafetyLabel.values)


class WorkbenchError(Exception):
    """A request the workbench refuses, with a message meant for the person who made it."""

    code = "refused"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class StaleAssignment(WorkbenchError):
    """The lease this form was served under is gone (expired and reassigned, skipped, already
    submitted). Nothing was stored; the caller shows the message and keeps what was typed."""

    code = "stale"


class JudgmentInvalid(WorkbenchError):
    """The judgment breaks a rule. ``errors`` maps a field (or ``"__all__"``) to messages."""

    code = "invalid"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" if k != "__all__" else " ".join(v) for k, v in errors.items()))


@dataclass(frozen=True)
class ResponseLabel:
    label: str
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Judgment:
    """One person's answer for one item, as parsed from a form or an API body (not yet validated)."""

    ranking: list[list[int]] | None = None
    pair_choice: str = ""
    pair_strength: int | None = None
    prompt_label: str = ""
    prompt_categories: tuple[str, ...] = ()
    response_labels: dict[int, ResponseLabel] = field(default_factory=dict)
    principles: tuple[int, ...] = ()
    principles_conflicted: bool = False
    rationale: str = ""
    confidence: int | None = None


@dataclass(frozen=True)
class CleanJudgment:
    """A judgment that passed every rule; ready to become an Annotation."""

    ranking: list[list[int]] | None
    pair_a: int | None
    pair_b: int | None
    pair_choice: str
    pair_strength: int | None
    prompt_label: str
    prompt_categories: list[str]
    response_labels: dict[int, ResponseLabel]
    principle_ids: list[int]
    principles_conflicted: bool
    rationale: str
    confidence: int | None
    has_safety: bool


def mode_parts(mode: str) -> tuple[bool, bool, bool]:
    """(ranking, pairwise, safety) for a project mode."""
    return (
        mode in (Project.Mode.RANKING, Project.Mode.RANKING_SAFETY),
        mode == Project.Mode.PAIRWISE,
        mode in (Project.Mode.SAFETY, Project.Mode.RANKING_SAFETY),
    )


def _check_categories(
    where: str, label: str, cats: tuple[str, ...] | list[str], *, valid: set[str], require: bool,
    errors: dict[str, list[str]],
) -> list[str]:
    cats = [str(c) for c in cats]
    unknown = sorted(set(cats) - valid)
    if unknown:
        errors.setdefault(where, []).append(
            f"Unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} for this project's taxonomy version."
        )
    if len(set(cats)) != len(cats):
        errors.setdefault(where, []).append("A category is listed twice.")
    if label != UNSAFE and cats:
        errors.setdefault(where, []).append("Categories apply only to a label of unsafe.")
    if label == UNSAFE and require and not cats:
        errors.setdefault(where, []).append("Unsafe needs at least one category.")
    return sorted(set(cats), key=cats.index)


def judgment_validate(
    *, project: Project, judgment: Judgment, shown_order: list[int], category_codes: set[str],
    principle_ids: set[int],
) -> CleanJudgment:
    """Check ``judgment`` against the project's mode, taxonomy version and principle set.

    ``shown_order`` is the list of response ids the person was shown (all of the item's responses,
    in their shuffled order); a ranking must be a complete weak order over exactly these.
    Raises :class:`JudgmentInvalid` listing every problem at once.
    """
    errors: dict[str, list[str]] = {}
    wants_ranking, wants_pair, wants_safety = mode_parts(project.mode)
    responses = list(shown_order)
    response_set = set(responses)

    ranking: list[list[int]] | None = None
    if wants_ranking:
        if not judgment.ranking:
            errors["ranking"] = ["Rank every response (ties are allowed)."]
        else:
            seen: list[int] = []
            ok = True
            for group in judgment.ranking:
                if not isinstance(group, (list, tuple)) or not group:
                    ok = False
                    break
                for rid in group:
                    if not isinstance(rid, int) or isinstance(rid, bool):
                        ok = False
                    seen.append(rid)
            if not ok:
                errors["ranking"] = ["A ranking is a list of non-empty groups of response ids, best first."]
            else:
                dupes = sorted({r for r in seen if seen.count(r) > 1})
                missing = sorted(response_set - set(seen))
                extra = sorted(set(seen) - response_set)
                msgs = []
                if dupes:
                    msgs.append(f"Responses {dupes} are ranked more than once.")
                if missing:
                    msgs.append(f"Responses {missing} have no rank; rank every response.")
                if extra:
                    msgs.append(f"Responses {extra} are not responses of this item.")
                if msgs:
                    errors["ranking"] = msgs
                else:
                    ranking = [sorted(group, key=responses.index) for group in judgment.ranking]
    elif judgment.ranking:
        errors["ranking"] = ["This project does not rank responses."]

    pair_a = pair_b = None
    pair_choice, pair_strength = "", None
    if wants_pair:
        if len(responses) < 2:
            errors["pair_choice"] = ["This item has fewer than two responses to compare."]
        else:
            pair_a, pair_b = responses[0], responses[1]
        choice = judgment.pair_choice
        if choice not in ("a", "b", "tie"):
            errors.setdefault("pair_choice", []).append("Choose A, B or tie.")
        elif choice == "tie":
            if judgment.pair_strength not in (None, 0):
                errors["pair_strength"] = ["A tie has no strength."]
            pair_choice, pair_strength = "tie", 0
        else:
            if judgment.pair_strength not in (1, 2, 3):
                errors["pair_strength"] = ["Say how much better: slightly (1), better (2) or much better (3)."]
            else:
                pair_choice, pair_strength = choice, int(judgment.pair_strength)
    elif judgment.pair_choice or judgment.pair_strength is not None:
        errors["pair_choice"] = ["This project does not compare pairs."]

    prompt_label, prompt_categories = "", []
    response_labels: dict[int, ResponseLabel] = {}
    require = project.require_category_when_unsafe
    if wants_safety:
        prompt_label = judgment.prompt_label or ""
        if prompt_label and prompt_label not in LABELS:
            errors["prompt_label"] = [f"Unknown label {prompt_label!r}; use safe, needs_caution or unsafe."]
        elif not prompt_label and project.mode == Project.Mode.SAFETY:
            errors["prompt_label"] = ["Label the prompt: safe, needs caution or unsafe."]
        prompt_categories = _check_categories(
            "prompt_label", prompt_label, judgment.prompt_categories, valid=category_codes, require=require,
            errors=errors,
        )
        extra = sorted(set(judgment.response_labels) - response_set)
        if extra:
            errors.setdefault("response_labels", []).append(f"Responses {extra} are not responses of this item.")
        for rid in responses:
            given = judgment.response_labels.get(rid)
            key = f"label-{rid}"
            if given is None or not given.label:
                errors.setdefault(key, []).append("Label this response: safe, needs caution or unsafe.")
                continue
            if given.label not in LABELS:
                errors.setdefault(key, []).append(f"Unknown label {given.label!r}.")
                continue
            cats = _check_categories(key, given.label, given.categories, valid=category_codes, require=require, errors=errors)
            response_labels[rid] = ResponseLabel(label=given.label, categories=tuple(cats))
    elif judgment.prompt_label or judgment.prompt_categories or judgment.response_labels:
        errors["prompt_label"] = ["This project does not collect safety labels."]

    principle_list = list(dict.fromkeys(int(p) for p in judgment.principles))
    unknown_principles = sorted(set(principle_list) - principle_ids)
    if unknown_principles:
        errors["principles"] = ["Those principles are not in this project's principle set."]

    confidence = judgment.confidence
    if confidence is not None and (isinstance(confidence, bool) or confidence not in (1, 2, 3, 4, 5)):
        errors["confidence"] = ["Confidence is a whole number from 1 to 5."]
    rationale = (judgment.rationale or "").strip()
    if len(rationale) > MAX_RATIONALE:
        errors["rationale"] = [f"The rationale is longer than {MAX_RATIONALE} characters."]

    if errors:
        raise JudgmentInvalid(errors)
    return CleanJudgment(
        ranking=ranking, pair_a=pair_a, pair_b=pair_b, pair_choice=pair_choice, pair_strength=pair_strength,
        prompt_label=prompt_label, prompt_categories=prompt_categories, response_labels=response_labels,
        principle_ids=principle_list, principles_conflicted=bool(judgment.principles_conflicted),
        rationale=rationale, confidence=confidence, has_safety=bool(prompt_label or response_labels),
    )


def annotation_fields(clean: CleanJudgment, *, project: Project) -> dict:
    """Keyword arguments for ``Annotation(...)`` from a clean judgment."""
    return dict(
        ranking=clean.ranking,
        pair_a_id=clean.pair_a if clean.pair_choice else None,
        pair_b_id=clean.pair_b if clean.pair_choice else None,
        pair_choice=clean.pair_choice,
        pair_strength=clean.pair_strength,
        prompt_label=clean.prompt_label,
        prompt_categories=clean.prompt_categories,
        taxonomy_version_id=project.taxonomy_version_id if clean.has_safety else None,
        rationale=clean.rationale,
        confidence=clean.confidence,
        principles_conflicted=clean.principles_conflicted,
    )

