"""What a judgment is, the rules it must satisfy, and where a source is deliberately more lenient.

Every judgment, whatever recorded it (a person in the workbench, an adjudicator, an import, the
jury, a guard, an edit review), is held to the rule functions below. ``judgment_validate`` applies
them to a parsed :class:`Judgment` (the workbench, the adjudication page and the API); the
importer applies the same functions to each record as it parses it (see
``annotation.importing.formats.tribunal``) and keeps its COPY fast path for the write.
:func:`annotation.services.annotation_record` stores a validated judgment.

Sources differ in one declared way only: :data:`IMPORT_RULES` (the reason is written there).
The browser and the API only *parse* input into a :class:`Judgment`; they never decide whether it
is acceptable.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from annotation.models import Project, SafetyLabel

MAX_RATIONALE = 10_000
# What one judgment can hold at most, checked before anything else looks at it (a body with 30,000
# tie groups is refused by its size, not by validating every group): an item has at most
# MAX_RESPONSES responses (the importer's limit too), a taxonomy version far fewer categories than
# MAX_CATEGORIES, a principle set fewer than MAX_PRINCIPLES principles.
MAX_RESPONSES = 1000
MAX_CATEGORIES = 100
MAX_PRINCIPLES = 100
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
    # edit_review items only: the verdict on the edit, and with "fix" the reviewer's own text.
    edit_verdict: str = ""
    edit_fix: str = ""


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
    # edit_review items: the verdict, the fix's text (verdict fix) and the edited response reviewed.
    edit_verdict: str = ""
    edit_fix_text: str = ""
    review_of: int | None = None


# --- The rules --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgmentRules:
    """What a source's judgments must satisfy beyond their shape."""

    every_response_labelled: bool  # a safety judgment labels every response of the item
    categories_only_on_unsafe: bool  # hazard categories go with the label "unsafe" only
    unsafe_needs_category: bool  # "unsafe" names a category, where the project asks for it
    # The judgment answers one task whatever the project's mode: the parts it holds (ranking, pair,
    # safety) are checked, the parts it lacks are not required.
    any_mode: bool = False
    # Tie groups are stored in the order the responses were shown (a person's form lists them so);
    # a machine's are kept as it gave them (the jury's ranking from pairs), as they always were.
    tie_groups_in_shown_order: bool = True


# People judging in Tribunal: the workbench, adjudication (and the jury, guards and edit review once
# they record through annotation.services.annotation_record).
STRICT_RULES = JudgmentRules(every_response_labelled=True, categories_only_on_unsafe=True, unsafe_needs_category=True)

# Imports are deliberately more lenient, because they carry judgments made elsewhere under other
# tools' rules and dropping them would lose real labels: public data sets label only some of an
# item's responses (an Aegis row labels its one response only when it has a response_label; in the
# own format ``null`` means "not labelled"), and some attach hazard categories to a label other than
# unsafe (e.g. a "needs caution" with the categories that made it so). Consensus and exports read
# whatever labels exist. Shape rules (complete rankings, pair choice and strength, known labels and
# categories) are the same for imports.
IMPORT_RULES = JudgmentRules(
    every_response_labelled=False, categories_only_on_unsafe=False, unsafe_needs_category=False
)


# Machine judges (the jury; guards and edit review as they arrive) are lenient where a model's
# answer is shaped differently from a person's, and nowhere else. A run answers the one task it was
# asked (safety, or preference) whatever the project's mode, and a preference run of two responses
# records both the ranking and the pair, so exports of either kind can use it; a juror's label and
# its categories are scored separately, so categories may come with "needs caution", an "unsafe"
# may name none when no category cleared the threshold, and a response whose verdict failed stays
# unlabelled rather than guessed. Shape rules (complete rankings, pair strength, known labels and
# categories) are the same.
MACHINE_RULES = JudgmentRules(
    every_response_labelled=False, categories_only_on_unsafe=False, unsafe_needs_category=False, any_mode=True,
    tie_groups_in_shown_order=False,
)
MACHINE_SOURCES = frozenset({"jury", "juror", "guard"})


# An edit review (an ``edit_review`` item) answers one question about one edited response: accept it
# as it is, reject it, or fix it by hand. People (the workbench, adjudication) are the only source.
EDIT_VERDICTS = ("accept", "reject", "fix")
MAX_EDIT_FIX = 100_000


def edit_review_problems(verdict: str, fix_text: str, *, edited_text: str | None) -> dict[str, list[str]]:
    """What is wrong with an edit review's verdict and fix. ``edited_text``: the edit under review
    (None when the caller did not load it, i.e. the verdict is not fix)."""
    errors: dict[str, list[str]] = {}
    if verdict not in EDIT_VERDICTS:
        errors["edit_verdict"] = ["Accept, reject or fix the edit."]
    elif verdict == "fix":
        if not fix_text.strip():
            errors["edit_fix"] = ["Write the fixed text, or accept or reject the edit as it is."]
        elif len(fix_text) > MAX_EDIT_FIX:
            errors["edit_fix"] = [f"The fix is longer than {MAX_EDIT_FIX} characters."]
        elif edited_text is not None and fix_text.strip() == edited_text.strip():
            errors["edit_fix"] = ["The fix is the edit unchanged; accept the edit instead."]
    elif fix_text.strip():
        errors["edit_fix"] = ["Only a verdict of fix carries a fixed text."]
    return errors


def _check_confidence_and_rationale(judgment: Judgment, errors: dict[str, list[str]]) -> str:
    """The checks every judgment shares: confidence 1-5 when given, a rationale of bounded length.
    Adds to ``errors``; returns the stripped rationale."""
    confidence = judgment.confidence
    if confidence is not None and (isinstance(confidence, bool) or confidence not in (1, 2, 3, 4, 5)):
        errors["confidence"] = ["Confidence is a whole number from 1 to 5."]
    rationale = (judgment.rationale or "").strip()
    if len(rationale) > MAX_RATIONALE:
        errors["rationale"] = [f"The rationale is longer than {MAX_RATIONALE} characters."]
    return rationale


def _edit_review_validate(judgment: Judgment, *, review_of: int, edited_text: str | None) -> CleanJudgment:
    """An edit review: a verdict (and a fix), a rationale and a confidence; nothing of a judge item."""
    errors = edit_review_problems(judgment.edit_verdict, judgment.edit_fix, edited_text=edited_text)
    if judgment.ranking or judgment.pair_choice or judgment.pair_strength is not None:
        errors["__all__"] = ["An edit review has no ranking or preference; accept, reject or fix the edit."]
    if judgment.prompt_label or judgment.prompt_categories or judgment.response_labels:
        errors.setdefault("__all__", []).append("An edit review has no safety labels.")
    if judgment.principles or judgment.principles_conflicted:
        errors.setdefault("__all__", []).append("An edit review names no principles.")
    rationale = _check_confidence_and_rationale(judgment, errors)
    if errors:
        raise JudgmentInvalid(errors)
    verdict = judgment.edit_verdict
    return CleanJudgment(
        ranking=None, pair_a=None, pair_b=None, pair_choice="", pair_strength=None, prompt_label="",
        prompt_categories=[], response_labels={}, principle_ids=[], principles_conflicted=False,
        rationale=rationale, confidence=judgment.confidence, has_safety=False, edit_verdict=verdict,
        edit_fix_text=judgment.edit_fix.strip() if verdict == "fix" else "", review_of=review_of,
    )


def response_letter(index: int) -> str:
    """How every page names the response at ``index`` (0-based, in position order): A to Z, then
    #27, #28, ... (an item may hold up to MAX_RESPONSES).

    >>> response_letter(0), response_letter(25), response_letter(26)
    ('A', 'Z', '#27')
    """
    return chr(ord("A") + index) if index < 26 else f"#{index + 1}"


def rules_for(source: str) -> JudgmentRules:
    """The rules for judgments of ``source`` (an ``Annotation.Source`` value)."""
    if source == "import":
        return IMPORT_RULES
    if source in MACHINE_SOURCES:
        return MACHINE_RULES
    return STRICT_RULES


@dataclass(frozen=True)
class RankingGaps:
    duplicated: list[int]
    missing: list[int]
    unknown: list[int]

    def __bool__(self) -> bool:
        return bool(self.duplicated or self.missing or self.unknown)


def ranking_gaps(groups: list[list[int]], response_ids: list[int]) -> RankingGaps:
    """How ``groups`` (tie groups, best first) fails to be a complete weak order over exactly
    ``response_ids``: responses placed twice, not placed, or not of the item (each sorted)."""
    seen = Counter(rid for group in groups for rid in group)
    known = set(response_ids)
    return RankingGaps(
        duplicated=sorted(r for r, n in seen.items() if n > 1),
        missing=sorted(known - set(seen)),
        unknown=sorted(set(seen) - known),
    )


def pair_strength_valid(choice: str, strength: int | None) -> bool:
    """A tie has strength 0 (or none given); a preference has 1 slightly, 2 better or 3 much better."""
    if choice == "tie":
        return strength in (None, 0) and not isinstance(strength, bool)
    return strength in (1, 2, 3) and not isinstance(strength, bool)


# The one rule for "needs caution" (README "Safety labels"): *needs caution* is a LABEL, never a
# hazard category. Aegis annotators pick categories only for unsafe (REFERENCE.md section 1), so people
# in Tribunal do the same: categories go with "unsafe" only, and a taxonomy's "Needs Caution" entry
# (Aegis 2.0 S13) is never picked as a category: the workbench's picker does not offer it, and a
# person's judgment that names it is refused with a message that says to use the label. Imports keep
# it as the data set wrote it (IMPORT_RULES: Aegis rows list it among violated categories).
LABEL_LIKE_CATEGORY_NAMES = frozenset({"needs caution"})


def is_label_category(name: str) -> bool:
    """Whether a taxonomy entry named ``name`` is really the label "needs caution", not a hazard."""
    return " ".join(name.lower().split()) in LABEL_LIKE_CATEGORY_NAMES


def category_problems(label: str, categories: list[str], *, rules: JudgmentRules, project_requires: bool) -> list[str]:
    """Problems of the categories attached to one safety label (codes already known to be valid)."""
    problems = []
    if len(set(categories)) != len(categories):
        problems.append("A category is listed twice.")
    if rules.categories_only_on_unsafe and label != UNSAFE and categories:
        problems.append(
            "Categories apply only to a label of unsafe."
            + (" For \"needs caution\", choose the label alone, without categories." if label == "needs_caution" else "")
        )
    if rules.unsafe_needs_category and project_requires and label == UNSAFE and not categories:
        problems.append("Unsafe needs at least one category.")
    return problems


def unlabelled_responses(response_ids: list[int], labelled: set[int], *, rules: JudgmentRules) -> list[int]:
    """The responses a safety judgment must label but did not (none where ``rules`` allow partial labels)."""
    if not rules.every_response_labelled:
        return []
    return [rid for rid in response_ids if rid not in labelled]


# --- Validating a parsed judgment --------------------------------------------------------------------


_NEEDS_CAUTION_IS_A_LABEL = (
    "\"Needs Caution\" is a label, not a hazard category: choose the label \"needs caution\" instead."
)


def _be(ids: list[int], by_letter: bool) -> str:
    return "is" if by_letter and len(ids) == 1 else "are"


def _have(ids: list[int], by_letter: bool) -> str:
    return "has" if by_letter and len(ids) == 1 else "have"


def mode_parts(mode: str) -> tuple[bool, bool, bool]:
    """(ranking, pairwise, safety) for a project mode."""
    return (
        mode in (Project.Mode.RANKING, Project.Mode.RANKING_SAFETY),
        mode == Project.Mode.PAIRWISE,
        mode in (Project.Mode.SAFETY, Project.Mode.RANKING_SAFETY),
    )


def _check_categories(
    where: str, label: str, cats: tuple[str, ...] | list[str], *, valid: set[str], require: bool,
    rules: JudgmentRules, errors: dict[str, list[str]],
) -> list[str]:
    cats = [str(c) for c in cats]
    unknown = sorted(set(cats) - valid)
    if unknown:
        errors.setdefault(where, []).append(
            f"Unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} for this project's taxonomy version."
        )
    problems = category_problems(label, cats, rules=rules, project_requires=require)
    if problems:
        errors.setdefault(where, []).extend(problems)
    return list(dict.fromkeys(cats))  # without repeats, first mention first


def judgment_validate(
    *, project: Project, judgment: Judgment, shown_order: list[int], category_codes: set[str],
    principle_ids: set[int], rules: JudgmentRules = STRICT_RULES, name_by_letter: bool = False,
    label_category_codes: set[str] | frozenset[str] = frozenset(), review_of: int | None = None,
    edited_text: str | None = None,
) -> CleanJudgment:
    """Check ``judgment`` against the project's mode, taxonomy version and principle set.

    ``shown_order`` is the list of response ids the person was shown (all of the item's responses,
    in their shuffled order); a ranking must be a complete weak order over exactly these.
    Raises :class:`JudgmentInvalid` listing every problem at once. ``rules``: the source's
    (:func:`rules_for`); people are held to :data:`STRICT_RULES`. ``name_by_letter``: messages name
    responses by the letter the person saw (A for the first of ``shown_order``), as the workbench
    and adjudication pages do, instead of by database id (the API and imports). ``label_category_codes``:
    the codes of the taxonomy's "Needs Caution" entries (:func:`is_label_category`), refused as
    categories under :data:`STRICT_RULES`.

    ``review_of``: the edited response when the item is an ``edit_review`` item; its judgment is a
    verdict (:func:`edit_review_problems`; ``edited_text`` to refuse a "fix" that changes nothing)
    and nothing else. Only people review edits: a machine or import source is refused.
    """
    if review_of is not None:
        if rules is not STRICT_RULES:
            raise JudgmentInvalid({"__all__": ["Only people review edits."]})
        return _edit_review_validate(judgment, review_of=review_of, edited_text=edited_text)
    errors: dict[str, list[str]] = {}
    if judgment.edit_verdict or judgment.edit_fix:
        errors["edit_verdict"] = ["Only an edit review item takes a verdict on an edit."]
    wants_ranking, wants_pair, wants_safety = mode_parts(project.mode)
    if rules.any_mode:
        wants_ranking = bool(judgment.ranking)
        wants_pair = bool(judgment.pair_choice)
        wants_safety = bool(judgment.prompt_label or judgment.prompt_categories or judgment.response_labels)
    responses = list(shown_order)
    response_set = set(responses)
    letter_of = {rid: response_letter(i) for i, rid in enumerate(responses)}

    def named(ids: list[int]) -> str:
        if not name_by_letter:
            return f"Responses {ids}"
        shown = list(letter_of)
        in_order = sorted(ids, key=lambda rid: shown.index(rid) if rid in letter_of else len(shown))
        names = [letter_of.get(rid, "an unknown response") for rid in in_order]
        if len(names) == 1:
            return f"Response {names[0]}"
        return "Responses " + ", ".join(names[:-1]) + " and " + names[-1]

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
                gaps = ranking_gaps([list(group) for group in judgment.ranking], responses)
                msgs = []
                if gaps.duplicated:
                    msgs.append(f"{named(gaps.duplicated)} {_be(gaps.duplicated, name_by_letter)} ranked more than once.")
                if gaps.missing:
                    msgs.append(f"{named(gaps.missing)} {_have(gaps.missing, name_by_letter)} no rank; rank every response.")
                if gaps.unknown:
                    msgs.append(f"{named(gaps.unknown)} {_be(gaps.unknown, name_by_letter)} not responses of this item.")
                if msgs:
                    errors["ranking"] = msgs
                else:
                    if rules.tie_groups_in_shown_order:
                        position = {rid: i for i, rid in enumerate(responses)}
                        ranking = [sorted(group, key=position.__getitem__) for group in judgment.ranking]
                    else:
                        ranking = [list(group) for group in judgment.ranking]
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
            if not pair_strength_valid("tie", judgment.pair_strength):
                errors["pair_strength"] = [
                    "A tie has no strength: clear \"slightly / better / much better\", or choose A or B if one is better."
                ]
            pair_choice, pair_strength = "tie", 0
        else:
            if not pair_strength_valid(choice, judgment.pair_strength):
                errors["pair_strength"] = ["Say how much better: slightly (1), better (2) or much better (3)."]
            else:
                assert judgment.pair_strength is not None  # pair_strength_valid: 1, 2 or 3
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
        elif not prompt_label and project.mode == Project.Mode.SAFETY and not rules.any_mode:
            errors["prompt_label"] = ["Label the prompt: safe, needs caution or unsafe."]
        prompt_categories = _check_categories(
            "prompt_label", prompt_label, judgment.prompt_categories, valid=category_codes, require=require,
            rules=rules, errors=errors,
        )
        if rules.categories_only_on_unsafe and prompt_label == UNSAFE and set(prompt_categories) & set(label_category_codes):
            errors.setdefault("prompt_label", []).append(_NEEDS_CAUTION_IS_A_LABEL)
        extra = sorted(set(judgment.response_labels) - response_set)
        if extra:
            errors.setdefault("response_labels", []).append(f"Responses {extra} are not responses of this item.")
        labelled = {rid for rid, given in judgment.response_labels.items() if given.label}
        unlabelled = set(unlabelled_responses(responses, labelled, rules=rules))
        for rid in responses:
            given = judgment.response_labels.get(rid)
            key = f"label-{rid}"
            if rid in unlabelled:
                errors.setdefault(key, []).append("Label this response: safe, needs caution or unsafe.")
                continue
            if given is None or not given.label:
                continue
            if given.label not in LABELS:
                errors.setdefault(key, []).append(f"Unknown label {given.label!r}.")
                continue
            cats = _check_categories(
                key, given.label, given.categories, valid=category_codes, require=require, rules=rules, errors=errors
            )
            if rules.categories_only_on_unsafe and given.label == UNSAFE and set(cats) & set(label_category_codes):
                errors.setdefault(key, []).append(_NEEDS_CAUTION_IS_A_LABEL)
            response_labels[rid] = ResponseLabel(label=given.label, categories=tuple(cats))
    elif judgment.prompt_label or judgment.prompt_categories or judgment.response_labels:
        errors["prompt_label"] = ["This project does not collect safety labels."]

    principle_list = list(dict.fromkeys(int(p) for p in judgment.principles))
    unknown_principles = sorted(set(principle_list) - principle_ids)
    if unknown_principles:
        errors["principles"] = ["Those principles are not in this project's principle set."]

    rationale = _check_confidence_and_rationale(judgment, errors)

    if errors:
        raise JudgmentInvalid(errors)
    return CleanJudgment(
        ranking=ranking, pair_a=pair_a, pair_b=pair_b, pair_choice=pair_choice, pair_strength=pair_strength,
        prompt_label=prompt_label, prompt_categories=prompt_categories, response_labels=response_labels,
        principle_ids=principle_list, principles_conflicted=bool(judgment.principles_conflicted),
        rationale=rationale, confidence=judgment.confidence, has_safety=bool(prompt_label or response_labels),
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
        edit_verdict=clean.edit_verdict,
    )

