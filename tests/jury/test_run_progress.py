"""What a jury run's page says while it works: the stage (preparing a model, judging), per-juror
progress, an estimate of the time left, a cancel that asks first; and the worker-start conversion of
packaged models (issue 13, point 14)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from annotation import jobs
from jury import selectors, services
from jury.models import JuryChunk, JuryRun, Verdict
from jury.services.chunks import preparing_text
from tests.jury.conftest import SMOL, fake_juror

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished_run(project, items, django_capture_on_commit_callbacks):
    from config.celery import app

    jury = services.jury_create(name="two", jurors=[(fake_juror("fa"), 1.0), (fake_juror("fb"), 1.0)], rule="mean")
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = services.jury_run_start(project=project, jury=jury, task="safety")
    finally:
        app.conf.task_always_eager = False
    run.refresh_from_db()
    assert run.status == JuryRun.Status.DONE
    return run


def test_progress_counts_each_juror_and_estimates_the_time_left(finished_run):
    # given: the finished run put back to running, as if its last verdicts were still to come
    run = finished_run
    expected = run.verdicts_expected
    done = Verdict.objects.filter(run=run).count()
    missing = 4
    assert done == expected >= selectors.ETA_MIN_VERDICTS + missing
    Verdict.objects.filter(pk__in=list(Verdict.objects.filter(run=run).values_list("pk", flat=True)[:missing])).delete()
    JuryRun.objects.filter(pk=run.pk).update(status=JuryRun.Status.RUNNING)
    JuryChunk.objects.filter(run=run).update(status=JuryChunk.Status.RUNNING, stage="fb: judging")
    run.refresh_from_db()
    first = Verdict.objects.filter(run=run).order_by("created_at").first().created_at
    # when: two minutes after the first verdict
    progress = selectors.run_progress(run=run, now=first + timedelta(minutes=2))
    # then
    left = expected - progress.done
    assert progress.done == expected - missing
    assert [j.name for j in progress.jurors] == ["fa", "fb"]
    assert sum(j.done for j in progress.jurors) == progress.done and {j.expected for j in progress.jurors} == {expected // 2}
    assert progress.rate_per_min == pytest.approx(progress.done / 2)
    assert progress.eta_minutes == pytest.approx(left / (progress.done / 2))
    assert progress.stages == ["fb: judging"] * run.chunk_count


def test_a_finished_run_has_no_estimate_and_no_stage(finished_run):
    progress = selectors.run_progress(run=finished_run)
    assert progress.eta_minutes is None and progress.stages == [] and progress.percent == 100


def test_run_page_shows_stage_per_juror_progress_and_a_cancel_that_asks(login, project, finished_run):
    JuryRun.objects.filter(pk=finished_run.pk).update(status=JuryRun.Status.RUNNING)
    JuryChunk.objects.filter(run=finished_run).update(
        status=JuryChunk.Status.RUNNING, stage="fa: preparing the model (converting gemma3-270m on first use; minutes on a CPU)"
    )
    page = login("researcher").get(reverse("jury-run", args=[project.slug, finished_run.pk])).content.decode()
    assert "converting gemma3-270m on first use" in page
    assert "Per juror" in page and "fa:" in page and "fb:" in page
    assert '<details class="confirm-cancel">' in page and f"Yes, cancel run #{finished_run.pk}" in page


def test_preparing_text_says_when_a_packaged_model_is_converted_first(settings, tmp_path):
    settings.MODEL_CACHE_DIR = tmp_path  # an empty cache: nothing converted yet
    assert "converting smollm2-135m-instruct on first use" in preparing_text(SMOL)
    assert preparing_text({"backend": "fake", "model": "fake"}) == "loading the model"


def _worker(queues, tasks):
    """A stand-in for Celery's worker consumer as the worker_ready signal passes it: its app's queues."""
    from types import SimpleNamespace as NS

    consume_from = {name: NS(name=name) for name in queues}
    return NS(app=NS(amqp=NS(queues=NS(consume_from=consume_from)), tasks=tasks))


@pytest.mark.parametrize("queues,prepares", [({"gpu"}, True), ({"celery"}, False)])
def test_a_starting_gpu_worker_enqueues_model_preparation(monkeypatch, settings, queues, prepares):
    from config.celery import app

    sent = []
    names = [k.resume_task for k in jobs.job_kinds()] + list(jobs._START_TASKS)
    for name in names:  # record the enqueues instead of sending them to the broker
        monkeypatch.setattr(app.tasks[name], "delay", lambda *a, _n=name, **k: sent.append(_n))
    started = jobs.resume_on_worker_start(sender=_worker(queues, app.tasks))
    assert ("jury.prepare_models" in sent) is prepares and ("jury.prepare_models" in started) is prepares
    # and the task itself does nothing where the setting is off (the test settings)
    settings.JURY_PREPARE_MODELS_ON_START = False
    assert app.tasks["jury.prepare_models"].apply().get() == []


def test_prepare_converts_juror_models_with_a_prepare_hook_only(settings, tmp_path):
    fake_juror("only-fake")
    settings.JURY_PREPARE_MODELS_ON_START = True
    assert services.packaged_models_prepare() == []  # the fake kind has nothing to prepare


@pytest.mark.models
@pytest.mark.timeout(1800)
def test_prepare_converts_the_packaged_smollm2_once(model_cache_dir):
    from jury.backends import packaged

    services.juror_create(name="smol-p", backend="packaged", model=SMOL["model"], prompt_version="v1")
    assert services.packaged_models_prepare() == [SMOL["model"]]
    assert packaged.is_converted(SMOL["model"])
