"""What the jury's item page shows: each target (the prompt, response A, B, ...) as one table whose rows
are every rater's safety label side by side (people, imported raters, adjudication, each juror of each
run, the jury's decision), and one table of preferences written in response letters ("B > A = C").

Responses are lettered as the exports and adjudication letter them (``annotation.judgments.response_letter``
in position order); nothing here names a database id. A row "disagrees" when its label differs from the
people's majority (or, without people, from the majority of the rows).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from annotation.judgments import response_letter
from annotation.models import Annotation, Response, SafetyLabel

STRENGTH_WORDS = {1: "slightly better than", 2: "better than", 3: "much better than"}
LABEL_NAMES = dict(SafetyLabel.choices)
HUMAN_KINDS = frozenset({"human", "import", "adjudication"})


@dataclass
class LabelRow:
    who: str
    kind: str  # human / import / adjudication / jury (the decision) / juror
    label: str
    categories: list[str] = field(default_factory=list)
    p_unsafe: float | None = None
    rationale: str = ""
    disagrees: bool = False

    @property
    def label_display(self) -> str:
        return LABEL_NAMES.get(self.label, self.label or "—")


@dataclass
class TargetTable:
    name: str  # "Prompt", "Response A"
    rows: list[LabelRow]

    @property
    def disputed(self) -> bool:
        return any(row.disagrees for row in self.rows)


@dataclass
class PreferenceRow:
    who: str
    kind: str
    text: str  # "B > A = C", "A better than B", "A vs B: P(A better) 0.71"
    detail: str = ""


def letters_of(responses: list[Response]) -> dict[int, str]:
    ordered = sorted(responses, key=lambda r: r.position)
    return {r.pk: response_letter(n) for n, r in enumerate(ordered)}


def annotation_who(annotation: Annotation) -> tuple[str, str]:
    """(who, kind) of an annotation as the page names it."""
    source = annotation.source
    if source == Annotation.Source.JURY:
        return f"jury decision{f' ({annotation.source_detail})' if annotation.source_detail else ''}", "jury"
    if source == Annotation.Source.IMPORT:
        rater = annotation.rater or annotation.source_detail or "file"
        return f"imported: {rater}", "import"
    name = annotation.annotator.get_username() if annotation.annotator is not None else "—"
    if source == Annotation.Source.ADJUDICATION:
        return f"adjudication ({name})", "adjudication"
    return name, "human"


def ranking_text(ranking: list[list[int]], letters: dict[int, str]) -> str:
    return " > ".join(" = ".join(letters.get(rid, "?") for rid in group) for group in ranking)


def pair_text(annotation: Annotation, letters: dict[int, str]) -> str:
    a, b = letters.get(annotation.pair_a_id or 0, "?"), letters.get(annotation.pair_b_id or 0, "?")
    if annotation.pair_choice == Annotation.PairChoice.TIE:
        return f"{a} and {b} tie"
    better, worse = (a, b) if annotation.pair_choice == Annotation.PairChoice.A else (b, a)
    return f"{better} {STRENGTH_WORDS.get(annotation.pair_strength or 0, 'better than')} {worse}"


def _mark_disagreements(rows: list[LabelRow]) -> None:
    labelled = [row for row in rows if row.label]
    if len({row.label for row in labelled}) < 2:
        return
    people = [row.label for row in labelled if row.kind in HUMAN_KINDS]
    counts = Counter(people or [row.label for row in labelled])
    top = counts.most_common()
    if len(top) > 1 and top[0][1] == top[1][1]:
        reference = None  # no majority: every label is contested
    else:
        reference = top[0][0]
    for row in labelled:
        row.disagrees = reference is None or row.label != reference


def _top_categories(category_probs: dict, threshold: float = 0.5) -> list[str]:
    return sorted((code for code, p in (category_probs or {}).items() if p is not None and p >= threshold))


def safety_tables(*, responses: list[Response], annotations: list[Annotation], verdicts: list) -> list[TargetTable]:
    """One table for the prompt and one per response, each row one rater's label. ``verdicts`` are
    jury ``Verdict`` rows (safety task ones are used; others are ignored)."""
    letters = letters_of(responses)
    tables: dict[int | None, TargetTable] = {None: TargetTable("Prompt", [])}
    for response in sorted(responses, key=lambda r: r.position):
        tables[response.pk] = TargetTable(f"Response {letters[response.pk]}", [])
    for annotation in annotations:
        who, kind = annotation_who(annotation)
        if annotation.prompt_label:
            tables[None].rows.append(
                LabelRow(who, kind, annotation.prompt_label, list(annotation.prompt_categories or []),
                         rationale=annotation.rationale)
            )
        for safety in annotation.response_safety.all():
            if safety.response_id in tables:
                tables[safety.response_id].rows.append(
                    LabelRow(who, kind, safety.label, list(safety.categories or []), rationale=annotation.rationale)
                )
    for verdict in verdicts:
        if verdict.task != "safety" or verdict.response_b_id is not None:
            continue
        key = verdict.response_id if verdict.response_id is not None else None
        if key not in tables:
            continue
        tables[key].rows.append(
            LabelRow(
                f"{verdict.juror.name} · run {verdict.run_id}", "juror", verdict.label,
                _top_categories(verdict.category_probs), p_unsafe=verdict.p_positive,
            )
        )
    for table in tables.values():
        _mark_disagreements(table.rows)
    return list(tables.values())


def preference_rows(*, responses: list[Response], annotations: list[Annotation], verdicts: list) -> list[PreferenceRow]:
    """Every preference on the item in response letters: rankings, pairwise choices and the jurors'
    pairwise verdicts (with the principle, when the principles task judged it)."""
    letters = letters_of(responses)
    rows: list[PreferenceRow] = []
    for annotation in annotations:
        who, kind = annotation_who(annotation)
        if annotation.ranking and not annotation.pair_choice:  # a pair says the same with its strength
            rows.append(PreferenceRow(who, kind, ranking_text(annotation.ranking, letters), annotation.rationale))
        if annotation.pair_choice:
            rows.append(PreferenceRow(who, kind, pair_text(annotation, letters), annotation.rationale))
    for verdict in verdicts:
        if verdict.response_b_id is None or verdict.response_id is None:
            continue
        a, b = letters.get(verdict.response_id, "?"), letters.get(verdict.response_b_id, "?")
        shown = f"shown {a} first" if verdict.order == 0 else f"shown {b} first"
        principle = f"{verdict.principle.short}: " if verdict.principle_id else ""
        p = "—" if verdict.p_positive is None else f"{verdict.p_positive:.2f}"
        consistency = ""
        if verdict.position_consistent is False:
            consistency = "; flips with order"
        rows.append(
            PreferenceRow(f"{verdict.juror.name} · run {verdict.run_id}", "juror",
                          f"{principle}{a} vs {b}: P({a} better) {p}", f"{shown}{consistency}")
        )
    return rows


def decision_label_text(decision, letters: dict[int, str]) -> str:
    """A jury decision's label as the page says it: safety labels by name; a preference's winner (stored as
    response ids, "12,15") and its ranking in response letters; the principles task's row class as is."""
    if decision.task == "preference":
        ranking = (decision.details or {}).get("ranking")
        if ranking:
            return ranking_text(ranking, letters)
        ids = [int(part) for part in (decision.label or "").split(",") if part.strip().isdigit()]
        return " = ".join(letters.get(rid, "?") for rid in ids) + " best" if ids else "—"
    return LABEL_NAMES.get(decision.label, decision.label or "—")
