"""A worker killed with SIGKILL in the middle of a background import: after a restart the batch
finishes, with every item exactly once (real worker processes, Redis, the test database: PostgreSQL
or SQLite)."""
from __future__ import annotations

import json
import os
import signal

import pytest

from annotation.importing import import_batches_resume, import_file
from annotation.models import Annotation, ImportBatch, Item, Response
from tests.helpers.worker import broker_in_this_process, celery_worker, redis_url_or_skip, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

ITEMS = 20_000


def _write(path, n):
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"k-{i}", "prompt": f"question {i}", "responses": [f"a{i}", f"b{i}", f"c{i}"],
                                 "ranking": [[0], [1, 2]]}) + "\n")


def test_a_killed_import_resumes_after_restart_without_duplicates(project, tmp_path, settings):
    url = redis_url_or_skip()
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    path = tmp_path / "big.jsonl"
    _write(path, ITEMS)
    with broker_in_this_process(url):
        # given: a worker that has started the import
        with celery_worker(broker_url=url, log_path=tmp_path / "worker1.log") as first:
            batch = import_file(project=project, path=path, source_name="big.jsonl", background=True)

            def started() -> bool:
                batch.refresh_from_db()
                return batch.status == ImportBatch.Status.RUNNING and batch.bytes_read > 0
            wait_for(started, timeout=60, interval=0.05, what="the worker to start the import")
            # when: it is killed outright, mid-run
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        batch.refresh_from_db()
        assert batch.status == ImportBatch.Status.RUNNING, "the import finished before the kill; make it bigger"
        # then: nothing of the half-done write is visible
        assert Item.objects.filter(project=project).count() == 0
        # when: a new worker starts (its start-up hands the abandoned batch back to the queue;
        # the queue was purged, so only that hand-back can bring the batch back)
        with celery_worker(broker_url=url, log_path=tmp_path / "worker2.log"):
            def finished() -> bool:
                batch.refresh_from_db()
                return batch.status in (ImportBatch.Status.DONE, ImportBatch.Status.FAILED)
            wait_for(finished, timeout=150, what=f"import #{batch.pk} to finish after the restart")
    # then: complete, and nothing twice
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert batch.items_created == ITEMS
    assert Item.objects.filter(project=project).count() == ITEMS
    assert Response.objects.filter(item__project=project).count() == 3 * ITEMS
    assert Annotation.objects.filter(project=project).count() == ITEMS
    assert Item.objects.filter(project=project).values("external_id").distinct().count() == ITEMS


def test_a_batch_of_a_live_worker_is_left_alone(project, tmp_path, settings):
    # given: a batch claimed by this (living) process a moment ago
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    path = tmp_path / "small.jsonl"
    _write(path, 3)
    batch = import_file(project=project, path=path, source_name="small.jsonl", background=True)
    from django.utils import timezone

    from annotation.jobs import worker_identity

    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportBatch.Status.RUNNING, claimed_by=worker_identity(), heartbeat_at=timezone.now()
    )
    # when / then: it is not handed back
    assert import_batches_resume() == []
    # given: claimed by a process that no longer exists on this host
    ImportBatch.objects.filter(pk=batch.pk).update(claimed_by=worker_identity().rsplit(":", 1)[0] + ":999999999")
    # when / then: it is
    assert import_batches_resume() == [batch.pk]
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.PENDING and batch.claimed_by == ""
