"""Fixtures shared by the web, API, permission and admin tests (imported explicitly by them).

Items are created through ``annotation.importing.import_file`` (the real import path) from a
small JSONL file written by the test; annotations are created with the model's own append-only
insert, as the import and jury code do.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from annotation import services
from annotation.importing import import_file
from annotation.models import Annotation, ImportBatch, Item
from tests.annotation.workbench_fixtures import full_judgment

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="alert(2)">'

PERSONAS = ("admin", "researcher", "annotator", "outsider", "anonymous")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def sample_records(n: int, *, prefix: str = "q") -> list[dict]:
    return [
        {
            "id": f"{prefix}-{i}",
            "prompt": f"Question {i} ({prefix}): {XSS_SCRIPT}",
            "responses": [
                {"text": f"Answer A{i} {XSS_IMG}", "model": "model-a"},
                {"text": f"Answer B{i}", "model": "model-b"},
            ],
            "metadata": {"source_label": "unsafe"},
        }
        for i in range(n)
    ]


def import_records(project, tmp_path: Path, records: list[dict], *, user=None, name: str = "items.jsonl") -> ImportBatch:
    """Import ``records`` as a file the user called ``name`` (any text: it is not used on disk)."""
    path = write_jsonl(tmp_path / f"upload-{len(list(tmp_path.iterdir()))}.jsonl", records)
    batch = import_file(project=project, path=path, source_name=name, fmt="auto", user=user)
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    return batch


def add_human_annotation(*, item: Item, annotator, rationale: str = "looks fine") -> Annotation:
    """A person's complete judgment (the prompt "unsafe, S1"), through the judgment service's rules and writer."""
    order = list(item.responses.order_by("position").values_list("pk", flat=True))
    judgment = full_judgment(item.project, order, prompt_label="unsafe", prompt_categories=("S1",), rationale=rationale)
    return services.judgment_record(
        project=item.project, item_id=item.pk, source=Annotation.Source.HUMAN, annotator=annotator,
        judgment=judgment, shown_order=order,
    )


@pytest.fixture
def personas(admin_user, researcher, annotator, outsider):
    return {"admin": admin_user, "researcher": researcher, "annotator": annotator, "outsider": outsider, "anonymous": None}


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def batch(project, researcher, tmp_path) -> ImportBatch:
    """A finished import of three items into ``project``."""
    return import_records(project, tmp_path, sample_records(3), user=researcher)


@pytest.fixture
def item(batch) -> Item:
    first = Item.objects.filter(project=batch.project).order_by("id").first()
    assert first is not None  # the batch imported three items
    return first
