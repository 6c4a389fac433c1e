"""A real Celery worker is SIGKILLed in the middle of a guard training; a new worker takes the job
back (worker_ready -> exports.guard.resume), trains it again into the same deterministic folder,
and the guard ends ``ready`` once: no second registry row, no staging folder left behind, no
folder before it is complete. A training that kills its worker every time ends ``failed``.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from annotation.models import TaxonomyVersion
from exports.guard import services
from exports.guard.models import GuardModel, GuardTraining
from tests.guard.conftest import tiny_rows, write_jsonl
from tests.helpers.worker import broker_in_this_process, celery_worker, redis_url_or_skip, tail, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.timeout(400)]


def _aegis(presets) -> TaxonomyVersion:
    return presets["taxonomies"]["aegis-2.0"]


def _training_steps(job: GuardTraining) -> int:
    job.refresh_from_db()
    return job.step if job.phase == "training" else 0


@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_training_then_restart_ends_ready_once(presets, tmp_path):
    url = redis_url_or_skip()
    guard_dir = tmp_path / "guards"
    data = write_jsonl(tmp_path / "tiny.jsonl", tiny_rows())
    env = {"GUARD_DIR": str(guard_dir), "TRIBUNAL_DEVICE": "cpu"}
    with broker_in_this_process(url):
        with celery_worker(broker_url=url, log_path=tmp_path / "worker1.log", extra_env=env) as first:
            # enough steps (batch 2, 3 epochs of 48 rows = 72 steps) that the kill lands mid-training
            job = services.guard_training_request(
                name="killed", taxonomy_version=_aegis(presets), source_spec={"kind": "file", "path": str(data)},
                config={"epochs": 3, "batch_size": 2, "max_length": 32, "progress_every": 1}, out_dir=guard_dir / "killed-v1",
            )
            try:
                wait_for(lambda: _training_steps(job) >= 3, timeout=240, interval=0.1, what="the training to take steps")
            except AssertionError:
                raise AssertionError(tail(tmp_path / "worker1.log")) from None
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        job.refresh_from_db()
        assert job.status == GuardTraining.Status.RUNNING and 0 < job.step < job.steps_total
        assert GuardModel.objects.get().status == GuardModel.Status.TRAINING
        assert not (guard_dir / "killed-v1").exists()  # nothing half-written where a guard would be read
        print(f"killed at step {job.step}/{job.steps_total}")

        time.sleep(0.5)
        with celery_worker(broker_url=url, log_path=tmp_path / "worker2.log", extra_env=env):
            try:
                wait_for(lambda: GuardTraining.objects.get(pk=job.pk).status == GuardTraining.Status.DONE,
                         timeout=300, interval=0.5, what="the training to finish on the new worker")
            except AssertionError:
                raise AssertionError(tail(tmp_path / "worker2.log")) from None

    job.refresh_from_db()
    guard = GuardModel.objects.get()  # one registry row: the resume did not register a second guard
    assert guard.status == GuardModel.Status.READY and guard.version == 1
    assert job.attempts == 2 and job.step == job.steps_total
    folder = guard_dir / "killed-v1"
    assert guard.path == str(folder) and (folder / "guard.json").is_file() and (folder / "head.safetensors").is_file()
    assert sorted(p.name for p in guard_dir.iterdir()) == ["killed-v1"]  # no staging folder left behind


@pytest.mark.django_db
def test_a_training_that_keeps_killing_its_worker_ends_failed(presets, tmp_path, settings, monkeypatch):
    settings.GUARD_DIR = tmp_path / "guards"
    data = write_jsonl(tmp_path / "tiny.jsonl", tiny_rows())
    job = services.guard_training_request(
        name="crashy", taxonomy_version=_aegis(presets), source_spec={"kind": "file", "path": str(data)},
        background=False,
    )
    # as if three workers had claimed it and died: the next claim is the fourth
    GuardTraining.objects.filter(pk=job.pk).update(attempts=services.MAX_ATTEMPTS)
    monkeypatch.setattr(services, "_train", lambda *a, **k: pytest.fail("a job past its attempts must not train"))
    services.guard_training_run(training_id=job.pk)
    job.refresh_from_db()
    assert job.status == GuardTraining.Status.FAILED and "Gave up after 3 attempts" in job.error
    guard = GuardModel.objects.get()
    assert guard.status == GuardModel.Status.FAILED and guard.path == "" and not settings.GUARD_DIR.exists()
