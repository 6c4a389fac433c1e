"""The edit review task (issue 11): what its page shows and how its form is parsed.

An ``edit_review`` item asks one question about one synthetic edit (``Item.review_of``): accept
it, reject it, or fix it by hand. The page shows the prompt, a word-level diff of the original
and the edit (:mod:`annotation.workbench.diff`), and what drove the edit (``Item.metadata["edit"]``:
direction, feedback, editor, template, run). Everything is plain text for the template to escape.

Field names: ``item``, ``idempotency_key``, ``edit_verdict`` (accept | reject | fix), ``edit_fix``
(the fixed text; read only with verdict fix, so the prefilled box does not turn an accept into a
refused "fix text without fix"), ``rationale``, ``confidence`` (1-5).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.http import QueryDict

from annotation.models import Annotation, Item, Response
from annotation.workbench.diff import Segment, changed_words, word_diff
from annotation.workbench.judgments import Judgment

VERDICTS = [
    ("accept", "Accept the edit", "a"),
    ("reject", "Reject the edit", "r"),
    ("fix", "Fix it by hand", "f"),
]


@dataclass
class ReviewState:
    verdict: str = ""
    fix_text: str = ""
    rationale: str = ""
    confidence: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def general_errors(self) -> list[str]:
        return [m for msgs in self.errors.values() for m in msgs]


@dataclass
class EditUnderReview:
    item: Item
    edit: Response
    original: Response
    segments: list[Segment]
    inserted: int
    deleted: int
    direction: str
    feedback: str
    editor: str
    template: str
    run: str
    word_distance: str


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        name, version = value.get("name", ""), value.get("version", "")
        return f"{name} v{version}" if version != "" else str(name)
    if isinstance(value, (list, tuple)):
        return "\n".join(_text(v) for v in value)
    return str(value)


def edit_under_review(item: Item) -> EditUnderReview:
    """The edit of ``item`` (an edit_review item) with its original and the diff (two queries)."""
    assert item.review_of_id is not None  # item_review_kind_has_target
    edit = Response.objects.select_related("parent").get(pk=item.review_of_id)
    assert edit.parent is not None  # response_edit_has_parent
    meta = (item.metadata or {}).get("edit", {}) or {}
    segments = word_diff(edit.parent.text, edit.text)
    inserted, deleted = changed_words(segments)
    distance = meta.get("word_distance")
    return EditUnderReview(
        item=item, edit=edit, original=edit.parent, segments=segments, inserted=inserted, deleted=deleted,
        direction=_text(meta.get("direction")), feedback=_text(meta.get("feedback")),
        editor=_text(meta.get("editor")) or edit.model_name, template=_text(meta.get("template")),
        run=_text(meta.get("run")),
        word_distance=f"{distance:.2f}" if isinstance(distance, (int, float)) else _text(distance),
    )


def review_state(edit: Response, data: QueryDict | None = None, errors: dict[str, list[str]] | None = None) -> ReviewState:
    """The form's values: fresh (the fix box prefilled with the edit) or a re-shown POST."""
    if data is None:
        return ReviewState(fix_text=edit.text, errors=errors or {})
    return ReviewState(
        verdict=data.get("edit_verdict", ""), fix_text=data.get("edit_fix", edit.text),
        rationale=data.get("rationale", ""), confidence=data.get("confidence", ""), errors=errors or {},
    )


def review_judgment_from_post(data: QueryDict) -> tuple[Judgment, dict[str, list[str]]]:
    """Parse the review form; the service decides whether the verdict is acceptable."""
    errors: dict[str, list[str]] = {}
    verdict = data.get("edit_verdict", "")
    confidence_raw = data.get("confidence", "")
    confidence = None
    if confidence_raw:
        try:
            confidence = int(confidence_raw)
        except ValueError:
            errors["confidence"] = ["Confidence is a whole number from 1 to 5."]
    return Judgment(
        edit_verdict=verdict, edit_fix=data.get("edit_fix", "") if verdict == "fix" else "",
        rationale=data.get("rationale", ""), confidence=confidence,
    ), errors


@dataclass
class VerdictRow:
    annotation: Annotation
    who: str
    verdict: str
    fix: str
    status: str


def verdict_rows(annotations: list[Annotation]) -> list[VerdictRow]:
    """Every record of a review item, raw, for the adjudicator: who said what, and whether it stands."""
    superseded = {a.supersedes_id for a in annotations if a.supersedes_id}
    fixes = dict(Response.objects.filter(pk__in=[a.edit_fix_id for a in annotations if a.edit_fix_id])
                 .values_list("pk", "text"))
    rows = []
    for a in annotations:
        who = a.annotator.get_username() if a.annotator is not None else (a.source_detail or a.source)
        if a.source == Annotation.Source.ADJUDICATION:
            who += " (adjudication)"
        status = "retraction (undo)" if a.retracted else ("superseded" if a.pk in superseded else "current")
        rows.append(VerdictRow(annotation=a, who=who, verdict=a.edit_verdict,
                               fix=fixes.get(a.edit_fix_id, "") if a.edit_fix_id else "", status=status))
    return rows
