"""An export whose worker died mid-run is handed back when a worker starts, and its rerun gives
the same bytes as an uninterrupted run."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from django.utils import timezone

from annotation.jobs import worker_identity
from exports import services
from exports.models import Export
from tests.exports.conftest import annotate, make_item
from tests.helpers.sqlite import only_on_sqlite, short_busy_timeout, write_lock_held

pytestmark = pytest.mark.django_db(transaction=True)


def _files(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir()) if p.is_file()}


def test_an_abandoned_export_is_requeued_and_finishes_with_identical_files(project, raters, researcher, export_dir):
    for i in range(12):
        item, (a, b) = make_item(project, f"prompt {i}", [f"good {i}", f"bad {i}"])
        annotate(project, item, annotator=raters[0], ranking=[[a], [b]])
    options = {"format": "dpo"}
    clean = services.export_request(project=project, user=researcher, options=options, background=False)
    clean = services.export_run(export_id=clean.pk)
    assert clean.status == Export.Status.DONE

    # given: a background export claimed by a worker process that no longer exists, half written
    export = services.export_request(project=project, user=researcher, options=options)
    host = worker_identity().rsplit(":", 1)[0]
    Export.objects.filter(pk=export.pk).update(
        status=Export.Status.RUNNING, claimed_by=f"{host}:999999999", heartbeat_at=timezone.now(), items_done=5
    )
    Path(export.out_dir).mkdir(parents=True, exist_ok=True)
    (Path(export.out_dir) / "train.jsonl").write_text('{"half": "written"')
    # and one claimed by this living process, which must be left alone
    live = services.export_request(project=project, user=researcher, options=options)
    Export.objects.filter(pk=live.pk).update(
        status=Export.Status.RUNNING, claimed_by=worker_identity(), heartbeat_at=timezone.now()
    )
    # when: a worker starts
    assert services.export_jobs_resume() == [export.pk]
    # then: the abandoned one is pending again, and its rerun matches the clean run byte for byte
    export.refresh_from_db()
    assert export.status == Export.Status.PENDING and export.claimed_by == "" and export.items_done == 0
    assert services.export_run(export_id=export.pk).status == Export.Status.DONE
    assert _files(Path(export.out_dir)) == _files(Path(clean.out_dir))
    live.refresh_from_db()
    assert live.status == Export.Status.RUNNING


def test_the_rerun_removes_staging_folders_of_dead_export_processes_only(project, raters, researcher, export_dir):
    import socket
    import subprocess
    import sys

    item, (a, b) = make_item(project, "prompt", ["good", "bad"])
    annotate(project, item, annotator=raters[0], ranking=[[a], [b]])
    export = services.export_request(project=project, user=researcher, options={"format": "dpo"}, background=False)
    out = Path(export.out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # a process that has exited
    host = socket.gethostname()
    # given: what killed exports left behind (old and new naming), and one of a live process
    left_old = out.parent / f".{out.name}.partial-{dead_pid}"
    left_new = out.parent / f".{out.name}.partial-{host}-{dead_pid}"
    live = out.parent / f".{out.name}.partial-{host}-{os.getppid()}"
    other_host = out.parent / f".{out.name}.partial-elsewhere-{dead_pid}"
    for folder in (left_old, left_new, live, other_host):
        folder.mkdir()
        (folder / "train.jsonl").write_text("half")
    # when the export runs
    assert services.export_run(export_id=export.pk).status == Export.Status.DONE
    # then the dead processes' folders are gone; a live process's and another host's stay
    assert not left_old.exists() and not left_new.exists()
    assert live.exists() and other_host.exists()
    assert not any(p.name.startswith(f".{out.name}.partial-{host}-{os.getpid()}") for p in out.parent.iterdir())


@only_on_sqlite
def test_an_export_that_cannot_be_claimed_on_a_locked_database_stays_pending_for_the_task_retry(
    project, raters, researcher, export_dir
):
    item, (a, b) = make_item(project, "prompt", ["good", "bad"])
    annotate(project, item, annotator=raters[0], ranking=[[a], [b]])
    export = services.export_request(project=project, user=researcher, options={"format": "dpo"})
    # while another connection holds SQLite's write lock past every retry, the claim fails: the
    # job is told to retry (a failed task would leave it PENDING, and no resumer re-queues those)
    with short_busy_timeout(0.1):
        with write_lock_held(), pytest.raises(services.ExportInterrupted, match="database is locked"):
            services.export_run(export_id=export.pk)
        export.refresh_from_db()
        assert (export.status, export.claimed_by) == (Export.Status.PENDING, "")
        # and the retry, once the lock is gone, runs it
        assert services.export_run(export_id=export.pk).status == Export.Status.DONE
