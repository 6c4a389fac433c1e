"""Big files run as background jobs: stored copy, PENDING, enqueued after commit, claimed once."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from annotation.importing import import_batch_run, import_file
from annotation.models import ImportBatch
from annotation.tasks import import_run_task
from tests.annotation.import_helpers import FIXTURES, NOTHING, stored

pytestmark = pytest.mark.django_db


@pytest.fixture
def upload_dir(tmp_path, settings):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    return settings.IMPORT_UPLOAD_DIR


def test_a_file_over_the_threshold_is_queued_and_runs_on_the_worker(project, upload_dir, settings,
                                                                    django_capture_on_commit_callbacks):
    settings.IMPORT_BACKGROUND_THRESHOLD = 100  # bytes; the fixture is bigger
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        batch = import_file(project=project, path=FIXTURES / "good_tribunal.jsonl", source_name="good_tribunal.jsonl")
    # then: nothing ran yet; the file was copied under IMPORT_UPLOAD_DIR/<id>/ and a task waits for commit
    assert (batch.status, batch.background) == (ImportBatch.Status.PENDING, True)
    assert Path(batch.stored_path) == upload_dir / str(batch.pk) / "good_tribunal.jsonl"
    assert Path(batch.stored_path).read_bytes() == (FIXTURES / "good_tribunal.jsonl").read_bytes()
    assert len(callbacks) == 1 and stored(project) == NOTHING

    # when the worker runs it
    import_run_task.run(batch.pk)
    # then
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert (batch.items_created, batch.items_skipped, batch.records_read) == (4, 1, 5)
    assert batch.progress == 1.0 and batch.bytes_read == batch.size_bytes
    assert batch.started_at and batch.finished_at
    assert not (upload_dir / str(batch.pk)).exists()  # the copy is removed once done
    assert stored(project)["items"] == 4


def test_a_batch_is_claimed_once(project, upload_dir, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        batch = import_file(project=project, path=FIXTURES / "good_tribunal.jsonl", source_name="g.jsonl",
                            background=True)
    assert import_batch_run(batch_id=batch.pk).status == ImportBatch.Status.DONE
    # a redelivered message finds the batch no longer pending and does nothing
    assert import_batch_run(batch_id=batch.pk) is None
    import_run_task.run(batch.pk)
    import_run_task.run(987654)  # a batch that does not exist: nothing happens
    assert stored(project)["items"] == 4


def test_a_failed_background_import_stores_nothing(project, upload_dir, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        batch = import_file(project=project, path=FIXTURES / "aegis_bad.csv", source_name="aegis_bad.csv",
                            background=True)
    import_run_task.run(batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED and batch.error_count == 3
    assert stored(project) == NOTHING
    assert not (upload_dir / str(batch.pk)).exists()


def test_background_progress_is_reported_while_validating(project, upload_dir, tmp_path, settings,
                                                          django_capture_on_commit_callbacks):
    # given a file of 5 chunks, and a spy on the progress writes of pass 1
    settings.IMPORT_BATCH_SIZE = 10
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{n}", "responses": ["a", "b"]}) + "\n" for n in range(50)))
    with django_capture_on_commit_callbacks(execute=False):
        batch = import_file(project=project, path=path, source_name="many.jsonl", background=True)
    from annotation.importing import service

    seen = []
    original = service._Progress.update

    def spy(self, position, records):
        self.last = 0.0  # no throttling in the test
        original(self, position, records)
        if self.pass_no == 1:
            seen.append(ImportBatch.objects.values_list("bytes_read", "records_read").get(pk=batch.pk))

    service._Progress.update = spy
    try:
        import_batch_run(batch_id=batch.pk)
    finally:
        service._Progress.update = original
    # then: pass 1 moved bytes_read up to half the file (pass 2 is the other half)
    assert [r for _, r in seen] == [10, 20, 30, 40, 50]
    assert all(0 < b <= batch.size_bytes // 2 for b, _ in seen)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.DONE and batch.items_created == 50


def test_a_foreground_import_whose_process_died_is_ended_as_failed_when_found(project, researcher, tmp_path):
    """Hardening 3: it used to stay "running" for ever, its page polling every two seconds."""
    import socket
    import subprocess
    import sys

    from django.test import Client
    from django.utils import timezone

    from annotation.importing import import_batches_reap

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    batch = ImportBatch.objects.create(
        project=project, source_name="big.jsonl", requested_format="tribunal", size_bytes=10, background=False,
        status=ImportBatch.Status.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now(),
        claimed_by=f"{socket.gethostname()}:{int(gone.stdout)}",  # a web worker that no longer exists
    )
    alive = ImportBatch.objects.create(
        project=project, source_name="other.jsonl", requested_format="tribunal", size_bytes=10, background=False,
        status=ImportBatch.Status.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now(),
        claimed_by=f"{socket.gethostname()}:{os.getppid()}",  # still running
    )
    c = Client()
    c.force_login(researcher)
    # when anyone looks at it
    data = c.get(f"/api/projects/{project.slug}/imports/{batch.pk}/").json()
    assert data["status"] == "failed"
    assert "stopped before it finished; nothing was stored" in data["errors"][0]["error"]
    page = c.get(f"/projects/{project.slug}/imports/{batch.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' not in page  # no more polling
    # the living one is left alone, also by the sweep at worker start
    assert import_batches_reap() == []
    assert ImportBatch.objects.get(pk=alive.pk).status == ImportBatch.Status.RUNNING


def test_a_foreground_import_records_who_runs_it(project, tmp_path):
    from annotation.jobs import worker_identity

    batch = import_file(project=project, path=FIXTURES / "good_tribunal.jsonl", source_name="g.jsonl",
                        background=False)
    assert batch.status == ImportBatch.Status.DONE and batch.claimed_by == worker_identity()
