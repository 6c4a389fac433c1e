"""Lock conflicts: saved work is never reported as failed, nothing is stored twice, jobs re-queue.

Real lock conflicts, no fakes: a second PostgreSQL connection holds row locks (``FOR UPDATE``) while
the server's connection runs with a short ``lock_timeout``, so the server's statement fails with
SQLSTATE 55P03 exactly as a contended production database would make it fail. Those tests are
PostgreSQL-only (``needs_row_locks``); the rest of the module runs on SQLite too.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.db import OperationalError, connection, transaction
from django.test import Client
from django.urls import reverse

from annotation.dbretry import is_lock_error, retry_on_lock
from annotation.importing import import_batch_run, import_file
from annotation.importing.service import ImportInterrupted
from annotation.models import Annotation, ImportBatch, Item
from annotation.tasks import ImportFailed, import_run_task
from tests.annotation.import_helpers import FIXTURES
from tests.annotation.workbench_fixtures import make_items

pytestmark = pytest.mark.django_db(transaction=True)

# The tests that hold real row locks; the others (error shapes, task outcomes, the retry) run on SQLite too.
needs_row_locks = pytest.mark.postgres(
    reason="row locks held from a second connection (psycopg, SELECT ... FOR UPDATE) and SET lock_timeout"
)


@contextmanager
def held(sql: str, params: list):
    """Run ``sql`` (a ``SELECT ... FOR UPDATE``) on a second connection and keep its locks until exit."""
    s = connection.settings_dict
    other = psycopg.connect(dbname=s["NAME"], user=s["USER"] or None, host=s["HOST"] or None,
                            port=s["PORT"] or None, password=s["PASSWORD"] or None)
    try:
        other.execute(sql, params).fetchall()  # psycopg opens a transaction: the locks stay
        yield
    finally:
        other.rollback()
        other.close()


@pytest.fixture
def short_lock_timeout():
    """The server's connection gives up on a held lock after 100 ms instead of waiting forever."""
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '100ms'")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET lock_timeout")


def _body(payload: dict, key: str) -> dict:
    ids = [r["id"] for r in payload["responses"]]
    return {"item": payload["item"], "idempotency_key": key, "ranking": [[i] for i in ids],
            "response_safety": [{"response": i, "label": "safe"} for i in ids]}


def _annotator_client(annotator) -> Client:
    c = Client()
    c.force_login(annotator)
    return c


@needs_row_locks
def test_a_saved_submit_whose_next_item_cannot_be_claimed_answers_success_with_next_error(
    project, tmp_path, annotator, short_lock_timeout
):
    make_items(project, tmp_path, 3)
    c = _annotator_client(annotator)
    payload = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    submit = reverse("api-annotate-submit", args=[project.slug]) + "?next=1"

    # while every other item of the project is locked by someone else, so no next item can be claimed
    with held("SELECT id FROM annotation_item WHERE project_id = %s AND id <> %s FOR UPDATE",
              [project.pk, payload["item"]]):
        r = c.post(submit, _body(payload, "k1"), content_type="application/json")

    # then the answer is the submit's success, with no next item and a reason: never a 500
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["item"] == payload["item"] and data["replayed"] is False
    assert data["next"] is None and data["next_error"]["code"] == "next_unavailable"
    assert Annotation.objects.filter(annotator=annotator).count() == 1
    # and once the locks are gone the client asks for its next item and gets one
    nxt = c.post(reverse("api-annotate-next", args=[project.slug]))
    assert nxt.status_code == 200 and nxt.json()["item"] != payload["item"]


@needs_row_locks
def test_a_submit_that_stays_locked_out_is_503_busy_as_json_and_the_resend_is_stored_once(
    project, tmp_path, annotator, short_lock_timeout
):
    make_items(project, tmp_path, 2)
    c = _annotator_client(annotator)
    payload = c.post(reverse("api-annotate-next", args=[project.slug])).json()
    submit = reverse("api-annotate-submit", args=[project.slug])

    # while the annotator's own lease row is locked (longer than every retry waits)
    with held("SELECT id FROM annotation_assignment WHERE item_id = %s FOR UPDATE", [payload["item"]]):
        busy = c.post(submit, _body(payload, "k1"), content_type="application/json")
    assert busy.status_code == 503
    assert busy["Content-Type"] == "application/json" and busy["Retry-After"] == "1"
    assert busy.json()["code"] == "busy"
    assert Annotation.objects.filter(annotator=annotator).count() == 0

    # when the client sends it again (same key), it is stored; a third send is a replay
    assert c.post(submit, _body(payload, "k1"), content_type="application/json").status_code == 201
    again = c.post(submit, _body(payload, "k1"), content_type="application/json")
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert Annotation.objects.filter(annotator=annotator).count() == 1


@needs_row_locks
def test_the_workbench_page_confirms_a_saved_item_when_the_next_one_cannot_be_claimed(
    project, tmp_path, annotator, short_lock_timeout
):
    make_items(project, tmp_path, 3)
    c = _annotator_client(annotator)
    c.get(reverse("workbench", args=[project.slug]))  # takes the first lease
    from annotation.models import Assignment

    lease = Assignment.objects.get(annotator=annotator, status="active")
    form = {"item": str(lease.item_id), "idempotency_key": "page-1"}
    for rank, rid in enumerate(lease.shown_order, start=1):
        form[f"rank-{rid}"] = str(rank)
        form[f"label-{rid}"] = "safe"
    with held("SELECT id FROM annotation_item WHERE project_id = %s AND id <> %s FOR UPDATE",
              [project.pk, lease.item_id]):
        r = c.post(reverse("workbench-submit", args=[project.slug]), form, HTTP_HX_REQUEST="true")
    html = r.content.decode()
    assert r.status_code == 200, html[:2000]
    assert "saved" in html and "could not be fetched just now" in html and "Your answer is saved" in html
    assert 'data-testid="queue-empty"' not in html  # not a false "nothing left"
    assert 'data-testid="retry-next"' in html and 'hx-trigger="load delay:2s"' in html  # asks again by itself
    # and that request (what htmx sends 2 s later, the locks gone) brings the next item
    follow = c.get(reverse("workbench", args=[project.slug]), HTTP_HX_REQUEST="true")
    assert follow.status_code == 200 and 'name="item"' in follow.content.decode()
    assert Annotation.objects.filter(annotator=annotator, item_id=lease.item_id).count() == 1


def test_api_errors_are_json_with_a_code(project, annotator, client):
    c = _annotator_client(annotator)
    unknown = c.get("/api/no-such-endpoint/")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    invalid = c.post(reverse("api-annotate-submit", args=[project.slug]), {"item": "x"},
                     content_type="application/json")
    assert invalid.status_code == 400 and invalid.json()["code"] == "invalid" and "item" in invalid.json()
    anonymous = client.post(reverse("api-annotate-next", args=[project.slug]))
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    missing = c.post(reverse("api-annotate-next", args=["no-such-project"]))
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


# --- Imports --------------------------------------------------------------------------------------------


@pytest.fixture
def upload_dir(tmp_path, settings):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    return settings.IMPORT_UPLOAD_DIR


def _parser_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "import-parser" and t.is_alive()]


@needs_row_locks
def test_a_background_import_locked_out_goes_back_to_pending_then_finishes(
    project, upload_dir, short_lock_timeout, caplog
):
    batch = import_file(project=project, path=FIXTURES / "good_tribunal.jsonl", source_name="g.jsonl",
                        background=True)
    stored_path = Path(batch.stored_path)

    # while another transaction holds the project row (the import's pass 2 locks it)
    with held("SELECT id FROM annotation_project WHERE id = %s FOR UPDATE", [project.pk]):
        with pytest.raises(ImportInterrupted):
            import_batch_run(batch_id=batch.pk, requeue_on_lock=True)

    # then the batch waits again, its file kept, nothing stored, and the parser thread is gone
    batch.refresh_from_db()
    assert (batch.status, batch.claimed_by, batch.items_created) == ("pending", "", 0)
    assert stored_path.is_file()
    assert Item.objects.filter(project=project).count() == 0
    assert _parser_threads() == []
    assert "cannot join current thread" not in caplog.text

    # and the retry finishes it
    assert import_batch_run(batch_id=batch.pk).status == ImportBatch.Status.DONE
    assert Item.objects.filter(project=project).count() == 4


@needs_row_locks
def test_a_background_import_on_its_last_try_ends_failed_with_the_reason(project, upload_dir, short_lock_timeout):
    batch = import_file(project=project, path=FIXTURES / "good_tribunal.jsonl", source_name="g.jsonl",
                        background=True)
    with held("SELECT id FROM annotation_project WHERE id = %s FOR UPDATE", [project.pk]):
        done = import_batch_run(batch_id=batch.pk, requeue_on_lock=False)
    assert done.status == ImportBatch.Status.FAILED
    assert "LockNotAvailable" in done.errors[0]["error"] or "lock" in done.errors[0]["error"].lower()
    assert _parser_threads() == []


def test_an_internal_error_fails_the_celery_task_too_not_only_the_batch(project, upload_dir):
    batch = import_file(project=project, path=FIXTURES / "good_tribunal.jsonl", source_name="g.jsonl",
                        background=True)
    Path(batch.stored_path).unlink()  # the stored copy vanished (a full disk, a cleaned volume)
    with pytest.raises(ImportFailed, match="internal error"):
        import_run_task.run(batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED


def test_a_file_with_errors_is_a_task_that_did_its_job_and_says_so(project, upload_dir):
    batch = import_file(project=project, path=FIXTURES / "bad_mixed.jsonl", source_name="bad.jsonl", background=True)
    outcome = import_run_task.run(batch.pk)
    assert "errors; nothing stored" in outcome
    assert ImportBatch.objects.get(pk=batch.pk).status == ImportBatch.Status.FAILED


# --- The retry itself --------------------------------------------------------------------------------


def test_lock_errors_are_told_apart_from_other_database_errors():
    assert is_lock_error(OperationalError("database is locked"))
    assert is_lock_error(OperationalError("database table is locked"))
    assert not is_lock_error(OperationalError("no such table: x"))
    assert not is_lock_error(ValueError("database is locked"))


def test_retry_runs_a_locked_out_transaction_again_but_never_inside_an_outer_one():
    calls = []

    @retry_on_lock
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("database is locked")
        return "ok"

    assert flaky() == "ok" and len(calls) == 3

    calls.clear()
    with pytest.raises(OperationalError):
        with transaction.atomic():
            flaky()
    assert len(calls) == 1  # the caller's transaction is aborted too: only its owner may retry

    @retry_on_lock
    def always():
        calls.append(1)
        raise OperationalError("database is locked")

    calls.clear()
    with pytest.raises(OperationalError):
        always()
    assert len(calls) == 5
