"""Small helpers shared by the import tests."""
from __future__ import annotations

from pathlib import Path

from annotation.models import Annotation, ImportBatch, Item, Response, ResponseSafety

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def stored(project) -> dict[str, int]:
    """How many rows an import could have written into ``project``."""
    return {
        "items": Item.objects.filter(project=project).count(),
        "responses": Response.objects.filter(item__project=project).count(),
        "annotations": Annotation.objects.filter(project=project).count(),
        "safety": ResponseSafety.objects.filter(annotation__project=project).count(),
    }


NOTHING = {"items": 0, "responses": 0, "annotations": 0, "safety": 0}


def assert_failed_and_empty(batch: ImportBatch, project) -> None:
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED, batch.errors
    assert batch.items_created == 0 and batch.responses_created == 0
    assert stored(project) == NOTHING
