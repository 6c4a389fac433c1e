"""A real Celery worker process, a real Redis broker and the test database (PostgreSQL or SQLite):
background imports end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from annotation.importing import import_file
from annotation.models import Annotation, ImportBatch, Item, Response
from tests.annotation.import_helpers import FIXTURES, NOTHING, stored
from tests.helpers.worker import (
    BASE_DIR,
    broker_in_this_process,
    celery_worker,
    database_url_for,
    redis_url_or_skip,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ITEMS = 3000


def _finished(batch: ImportBatch):
    def check() -> bool:
        batch.refresh_from_db()
        return batch.status in (ImportBatch.Status.DONE, ImportBatch.Status.FAILED)
    return check


def test_a_background_import_runs_on_a_real_worker(project, tmp_path, settings):
    url = redis_url_or_skip()
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    settings.IMPORT_BATCH_SIZE = 500
    path = tmp_path / "big.jsonl"
    with open(path, "w") as fh:
        for n in range(ITEMS):
            fh.write(json.dumps({"id": f"w-{n}", "prompt": f"question {n}", "responses": [f"a{n}", f"b{n}", f"c{n}"],
                                 "ranking": [[2], [0, 1]]}) + "\n")
    bad = FIXTURES / "aegis_bad.csv"
    with broker_in_this_process(url), celery_worker(broker_url=url, log_path=tmp_path / "worker.log"):
        # when: both go through Redis to the worker process
        batch = import_file(project=project, path=path, source_name="big.jsonl", background=True)
        failing = import_file(project=project, path=bad, source_name="aegis_bad.csv", background=True)
        assert batch.status == failing.status == ImportBatch.Status.PENDING
        wait_for(_finished(batch), timeout=60, what=f"import #{batch.pk}")
        wait_for(_finished(failing), timeout=30, what=f"import #{failing.pk}")
    # then
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert (batch.items_created, batch.responses_created, batch.annotations_created) == (ITEMS, 3 * ITEMS, ITEMS)
    assert batch.records_read == ITEMS and batch.progress == 1.0 and batch.detected_format == "tribunal"
    assert Item.objects.filter(import_batch=batch).count() == ITEMS
    assert Response.objects.filter(item__import_batch=batch).count() == 3 * ITEMS
    ann = Annotation.objects.get(item__external_id="w-7")
    a, b, c = Response.objects.filter(item__external_id="w-7").order_by("position").values_list("pk", flat=True)
    assert ann.ranking == [[c], [a, b]]
    assert failing.status == ImportBatch.Status.FAILED and failing.error_count == 3
    assert not (tmp_path / "imports" / str(batch.pk)).exists()


def test_the_command_waits_for_the_worker_and_exits_non_zero_on_failure(project, tmp_path):
    url = redis_url_or_skip()
    from django.db import connection

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": database_url_for(connection),
           "CELERY_BROKER_URL": url, "SECRET_KEY": settings.SECRET_KEY, "TRIBUNAL_VAR_DIR": str(settings.VAR_DIR)}

    def command(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "import_items", str(FIXTURES / name), "--project", project.slug,
             "--background", "--wait", "--timeout", "60"],
            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=90,
        )

    with celery_worker(broker_url=url, log_path=tmp_path / "worker.log"):
        bad = command("bad_mixed.jsonl")
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert "line 2: invalid JSON" in bad.stderr and "nothing was stored" in bad.stderr
        assert stored(project) == NOTHING
        good = command("good_tribunal.jsonl")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "queued for the worker" in good.stdout and "4 items created, 1 skipped" in good.stdout
    assert stored(project)["items"] == 4
