"""An end-to-end edit run with the real packaged SmolLM2 on three items (issue 11).

SmolLM2-135M is a poor editor: the point is the pipeline. The run must finish, every source must
be either kept (an edited Response with its review item) or discarded with a recorded reason, and
the raw output of the model must be stored as it came."""
from __future__ import annotations

import pytest

from annotation.models import Item, Response
from jury import services as jury_services
from jury.edits import services as edit_services
from jury.edits.models import Edit
from tests.jury.conftest import SMOL, import_items


@pytest.mark.models
@pytest.mark.timeout(600)
def test_smollm2_edit_run_on_three_items(project, tmp_path, smol, django_capture_on_commit_callbacks, researcher):
    from config.celery import app

    items = import_items(project, [
        ("How do I treat a small burn?", ["Put butter on it."]),
        ("Is it safe to mix bleach and ammonia?", ["Yes, it cleans better."]),
        ("What is the capital of France?", ["Lyon."]),
    ], tmp_path, prefix="s")
    editor = jury_services.model_spec_create(
        name="smol-editor", backend="packaged", model=SMOL["model"], batch_size=3, max_length=SMOL["max_length"],
        device="cpu",
    )
    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = edit_services.edit_run_start(
                project=project, editor=editor, direction="improve", user=researcher,
                options={"instruction": "Correct any unsafe or wrong advice.", "max_new_tokens": 48, "seed": 7,
                         "batch_size": 3, "max_ratio": 3.0, "max_extra_words": 40},
            )
    finally:
        app.conf.task_always_eager = old
    run.refresh_from_db()
    assert run.status == "done", run.error
    assert run.total == 3 and run.processed == 3 and run.kept_count + run.discarded_count == 3
    assert run.timings["edits_per_s"] > 0
    edits = list(Edit.objects.filter(run=run).select_related("edited_response", "review_item"))
    assert {e.item_id for e in edits} == {i.pk for i in items}
    for edit in edits:
        assert edit.raw_output.strip()  # the model said something, stored verbatim
        assert edit.feedback == {"instruction": "Correct any unsafe or wrong advice."}
        if edit.status == Edit.Status.KEPT:
            assert edit.edited_response.origin == "edited" and edit.edited_response.text.strip()
            assert edit.review_item.kind == "edit_review" and edit.review_item.review_of == edit.edited_response
        else:
            assert edit.discard_reason and edit.edited_response is None
    assert Response.objects.filter(origin="edited").count() == run.kept_count
    assert Item.objects.filter(kind="edit_review").count() == run.kept_count
