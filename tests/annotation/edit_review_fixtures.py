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
