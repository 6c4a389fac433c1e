"""The job kit (annotation.jobs): one status enum, leases, cancel, and the registry of resumable kinds."""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from annotation import jobs
from annotation.jobs import JobStatus, kinds_to_resume, lease_claim, lease_renew
from annotation.models import ImportBatch
from exports.models import Export
from jury.models import JuryChunk, JuryRun

pytestmark = pytest.mark.django_db


def test_every_job_model_uses_the_one_enum_with_the_stored_values():
    for model in (ImportBatch, Export, JuryRun, JuryChunk):
        assert model.Status is JobStatus
        assert model._meta.get_field("status").default == "pending"
    assert JobStatus.values == ["pending", "running", "done", "failed", "cancelled"]


@pytest.fixture
def chunk(project):
    from jury import services
    from tests.jury.conftest import fake_juror

    jury = services.jury_create(name="kit", jurors=[(fake_juror("kit"), 1.0)])
    run = JuryRun.objects.create(project=project, jury=jury, task="safety", status=JobStatus.RUNNING)
    return JuryChunk.objects.create(run=run, index=0, item_ids=[])


def test_a_lease_is_held_until_it_runs_out_then_claimed_again(chunk):
    # given a chunk claimed by one worker
    assert lease_claim(model=JuryChunk, pk=chunk.pk, lease_s=60, worker="w1").state == "claimed"
    # when a second worker tries while the lease holds, then it is told to come back when it ends
    busy = lease_claim(model=JuryChunk, pk=chunk.pk, lease_s=60, worker="w2")
    assert busy.state == "busy" and 55 < busy.wait_s <= 62
    assert not lease_renew(model=JuryChunk, pk=chunk.pk, lease_s=60, worker="w2")
    assert lease_renew(model=JuryChunk, pk=chunk.pk, lease_s=60, worker="w1")
    # when the lease has run out (the first worker died), the second worker claims it
    JuryChunk.objects.filter(pk=chunk.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert lease_claim(model=JuryChunk, pk=chunk.pk, lease_s=60, worker="w2").state == "claimed"
    chunk.refresh_from_db()
    assert chunk.worker == "w2" and chunk.attempts == 2 and chunk.status == JobStatus.RUNNING


def test_a_lease_is_not_given_when_its_condition_fails_or_the_chunk_is_done(chunk):
    not_running = Q(run__status=JobStatus.DONE)
    assert lease_claim(model=JuryChunk, pk=chunk.pk, lease_s=60, only_if=not_running).state == "skip"
    JuryChunk.objects.filter(pk=chunk.pk).update(status=JobStatus.DONE)
    assert lease_claim(model=JuryChunk, pk=chunk.pk, lease_s=60).state == "skip"
    assert lease_claim(model=JuryChunk, pk=chunk.pk + 999, lease_s=60).state == "skip"


def test_cancel_is_one_conditional_update(chunk):
    run = chunk.run
    assert jobs.cancel(model=JuryRun, pk=run.pk)
    assert not jobs.cancel(model=JuryRun, pk=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.finished_at is not None


def test_the_kinds_resume_by_the_queues_a_worker_consumes():
    import annotation.tasks  # noqa: F401  (each app registers its kind in its tasks module)
    import exports.guard.tasks
    import exports.tasks  # noqa: F401
    import jury.tasks  # noqa: F401

    names = lambda queues: {k.name for k in kinds_to_resume(queues)}  # noqa: E731
    gpu = {"jury-run", "guard-training", "guard-evaluation"}
    assert names({"celery"}) == {"import", "export", "metrics"}
    assert names({"gpu"}) == gpu
    assert names({"celery", "gpu"}) == names(set()) == {"import", "export", "metrics", *gpu}
    with pytest.raises(ValueError, match="already registered differently"):
        jobs.register_job_kind("import", resume_task="something.else")


def test_a_new_kind_registers_and_is_resumed_by_its_queue():
    kind = jobs.register_job_kind("guard-training-test", resume_task="exports.guard.resume", queue="gpu-test")
    try:
        assert kind in kinds_to_resume({"gpu-test"}) and kind not in kinds_to_resume({"celery"})
    finally:
        jobs._KINDS.pop("guard-training-test")


def test_the_worker_ready_handler_hands_back_abandoned_jobs(project, settings, django_capture_on_commit_callbacks):
    from config.celery import app

    # given an export whose worker process (on this host) is gone
    export = Export.objects.create(project=project, format="dpo", options={}, background=True,
                                   status=JobStatus.RUNNING, claimed_by=f"{socket.gethostname()}:999999999",
                                   heartbeat_at=timezone.now())
    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        # when a worker starts (queues unknown: every kind resumes); the re-run is not executed here
        with django_capture_on_commit_callbacks(execute=False):
            started = jobs.resume_on_worker_start(sender=None)
    finally:
        app.conf.task_always_eager = old
    # then the export was handed back to the queue
    assert {"import", "export", "jury-run"} <= set(started)
    export.refresh_from_db()
    assert export.status == JobStatus.PENDING and export.claimed_by == ""
