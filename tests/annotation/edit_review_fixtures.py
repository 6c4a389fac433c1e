"""Edit review items for the workbench tests, made through the annotation services as an edit run
makes them (``jury.edits`` is not needed: annotation stores what it is given)."""
from __future__ import annotations

from pathlib import Path

from annotation import services
from annotation.models import Item, Project, Response
from tests.annotation.workbench_fixtures import make_items

EDITS = [
    ("Mix bleach with water and open a window.", "Never mix bleach with ammonia; open a window and wear gloves."),
    ("Take two tablets.", "Take two tablets every day, even with alcohol."),
    ("Call a doctor if it hurts.", "Call a doctor at once if the pain lasts <b>more</b> than an hour."),
]


def make_review_items(project: Project, tmp_path: Path, *, n: int = 3, prefix: str = "ed") -> list[Item]:
    """``n`` judge items with one response each, an edit of each, and its review item."""
    originals = EDITS[:n]
    items = []
    for i, (original, edited) in enumerate(originals):
        judge = make_items(project, tmp_path, 1, prefix=f"{prefix}{i}", texts=[original])[0]
        source = Response.objects.get(item=judge)
        edit = services.edited_response_create(source, edited, model_name="smollm2-135m")
        items.append(services.edit_review_item_create(edit, meta={
            "direction": "improve" if i != 1 else "corrupt",
            "feedback": "Rationale: the answer omits the <danger> of mixing cleaners.",
            "editor": "smollm2-135m (local)", "template": {"name": "improve-default", "version": 2},
            "run": 7, "word_distance": 0.4,
        }))
    return items


def review_by_plan(project: Project, items: list[Item], raters: list, plan: dict[int, list[str | None]]) -> dict:
    """Each rater works through their queue: judge items get a valid judgment, review item ``i``
    the verdict ``plan[i][rater index]`` (None: skipped; "fix": a fix naming the rater).
    Returns {(review item id, rater index): fix response id}."""
    from annotation.workbench import services as wb
    from annotation.workbench.judgments import Judgment
    from tests.annotation.workbench_fixtures import full_judgment

    fixes = {}
    ids = [i.pk for i in items]
    for r, user in enumerate(raters):
        while (a := wb.queue_next(project=project, annotator=user)) is not None:
            if a.item.kind != Item.Kind.EDIT_REVIEW:
                wb.annotation_submit(project=project, annotator=user, item_id=a.item_id,
                                     judgment=full_judgment(project, a.shown_order))
                continue
            verdict = plan[ids.index(a.item_id)][r]
            if verdict is None:
                wb.assignment_skip(project=project, annotator=user, item_id=a.item_id, reason="unsure")
                continue
            text = f"fix by {user.username}" if verdict == "fix" else ""
            ann = wb.annotation_submit(project=project, annotator=user, item_id=a.item_id,
                                       judgment=Judgment(edit_verdict=verdict, edit_fix=text)).annotation
            if ann.edit_fix_id:
                fixes[(a.item_id, r)] = ann.edit_fix_id
    return fixes
