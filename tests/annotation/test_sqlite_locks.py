"""Lock conflicts on SQLite, the embedded default: the counterparts of ``test_lock_conflicts.py``.

SQLite has one write lock for the whole file. A second connection takes it for real
(``BEGIN IMMEDIATE``, ``tests/helpers/sqlite.py``) and keeps it while the server's connection, with
a busy timeout of 100 ms instead of 30 s, tries to write: every write fails with "database is
locked" exactly as it does on a laptop whose database is held by a long writer. Saved work is never
reported as failed, nothing is stored twice, jobs go back to the queue. SQLite only (`make test-sqlite`).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from annotation.importing import import_batch_run, import_file
from annotation.importing.service import ImportInterrupted
from annotation.models import Annotation, ImportBatch, Item
from tests.annotation.import_helpers import FIXTURES
from tests.annotation.workbench_fixtures import make_items
from tests.helpers.sqlite import only_on_sqlite, short_busy_timeout, write_lock_held

pytestmark = [pytest.mark.django_db(transaction=True), only_on_sqlite]


@pytest.fixture
def locked_out():
    """The test's connection waits 100 ms for the write lock instead of SQLITE_BUSY_TIMEOUT_S."""
    with short_busy_timeout(0.1):
        yield


@pytest.fixture
def upload_dir(tmp_path, settings):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    return settings.IMPORT_UPLOAD_DIR


def _body(payload: dict, key: str) -> dict:
    ids = [r["id"] for r in payload["responses"]]
    return {"item": payload["item"], "idempotency_key": key, "ranking": [[i] for i in ids],
            "response_safety": [{"response": i, "label": "safe"} for i in ids]}


def test_a_submit_that_stays_locked_out_is_503_busy_as_json_and_the_resend_is_stored_once(
    project, tmp_path, annotator, locked_out
):
    make_items(project, tmp_path, 2)
    c = Client()
    c.force_login(annotator)
    payload = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    submit = reverse("api-annotate-submit", args=[project.slug])

    # while another connection holds the write lock (longer than every retry waits)
    with write_lock_held():
        busy = c.post(submit, _body(payload, "k1"), content_type="application/json")
    assert busy.status_code == 503, busy.content
    assert busy["Content-Type"] == "application/json" and busy.json()["code"] == "busy"
    assert Annotation.objects.filter(annotator=annotator).count() == 0

    # when the client sends it again (same key), it is stored; a third send is a replay
    assert c.post(submit, _body(payload, "k1"), content_type="application/json").status_code == 201
    again = c.post(submit, _body(payload, "k1"), content_type="application/json")
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert Annotation.objects.filter(annotator=annotator).count() == 1


def test_a_background_import_locked_out_stays_pending_for_the_task_retry_then_finishes(
    project, upload_dir, locked_out
):
    batch = import_file(project=project, path=FIXTURES / "good_tribunal.jsonl", source_name="g.jsonl",
                        background=True)
    stored_path = Path(batch.stored_path)

    # while the database is locked the batch cannot even be claimed: the task is told to retry
    with write_lock_held(), pytest.raises(ImportInterrupted):
        import_batch_run(batch_id=batch.pk, requeue_on_lock=True)

    batch.refresh_from_db()
    assert (batch.status, batch.claimed_by, batch.items_created) == ("pending", "", 0)
    assert stored_path.is_file()
    assert Item.objects.filter(project=project).count() == 0

    # and the retry finishes it
    assert import_batch_run(batch_id=batch.pk).status == ImportBatch.Status.DONE
    assert Item.objects.filter(project=project).count() == 4
