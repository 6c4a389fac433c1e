"""Projects above ``METRICS_WORKER_THRESHOLD`` annotations: their metrics are computed on the worker
(a ``MetricsSnapshot`` claimed through the job kit) and the page / API show the newest stored result
with its time, marked ``recomputing`` while a newer one is on its way. One test runs the snapshot
service in this process; the integration test sends it through Redis to a real Celery worker."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from annotation import services
from annotation.metrics.services import metrics_snapshot_run, project_metrics, project_metrics_shown
from annotation.models import Annotation, MetricsSnapshot
from annotation.workbench.judgments import Judgment
from tests.annotation.test_metrics_project import built  # noqa: F401  (the fixture)
from tests.annotation.web_fixtures import client_for
from tests.helpers.worker import broker_in_this_process, celery_worker, redis_url_or_skip, wait_for

FIGURES = ("prompt_safety", "response_safety", "ranking", "choice", "annotators", "raters")


def _jury(project, item_id: int, label: str) -> None:
    """One more judgment (a new newest annotation id): the jury's, through the judgment service."""
    services.judgment_record(
        project=project, item_id=item_id, source=Annotation.Source.JURY, source_detail="second",
        judgment=Judgment(prompt_label=label), shown_order=[], store_shown_order=False,
        taxonomy_version_id=project.taxonomy_version_id,
    )


@pytest.mark.django_db
def test_under_the_threshold_the_page_computes_in_the_request(project, built, settings):
    settings.METRICS_WORKER_THRESHOLD = Annotation.objects.filter(project=project).count()
    m = project_metrics_shown(project, n_boot=20)
    assert "on_worker" not in m and m["prompt_safety"]["n_ratings"] > 0
    assert not MetricsSnapshot.objects.exists()


@pytest.mark.django_db
def test_above_it_the_snapshot_is_computed_once_and_shown_with_its_time(
    project, built, researcher, settings, django_capture_on_commit_callbacks
):
    settings.METRICS_WORKER_THRESHOLD = Annotation.objects.filter(project=project).count() - 1
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = project_metrics_shown(project, n_boot=20)
        again = project_metrics_shown(project, n_boot=20)
    assert first["pending"] and first["recomputing"] and first["on_worker"]
    assert again["pending"] and len(queued) == 1  # one snapshot, one task, however many requests
    snapshot = MetricsSnapshot.objects.get()
    assert snapshot.status == MetricsSnapshot.Status.PENDING and snapshot.n_boot == 20
    # the worker's side, in this process
    done = metrics_snapshot_run(snapshot_id=snapshot.pk)
    assert done is not None and done.status == MetricsSnapshot.Status.DONE and done.seconds >= 0
    assert metrics_snapshot_run(snapshot_id=snapshot.pk) is None  # a redelivery does nothing
    shown = project_metrics_shown(project, n_boot=20)
    assert not shown["recomputing"] and shown["snapshot"]["current"] and shown["snapshot"]["id"] == snapshot.pk
    direct = project_metrics(project, n_boot=20, use_cache=False)
    assert {k: shown[k] for k in FIGURES} == {k: direct[k] for k in FIGURES}
    # a new judgment: the old result is shown, marked recomputing, and a new snapshot is queued
    item_id = Annotation.objects.filter(project=project).values_list("item_id", flat=True).first()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        _jury(project, item_id, "unsafe")
        stale = project_metrics_shown(project, n_boot=20)
    assert stale["recomputing"] and not stale["snapshot"]["current"] and stale["snapshot"]["id"] == snapshot.pk
    assert len(queued) == 1
    newer = MetricsSnapshot.objects.exclude(pk=snapshot.pk).get()
    metrics_snapshot_run(snapshot_id=newer.pk)
    assert list(MetricsSnapshot.objects.values_list("pk", flat=True)) == [newer.pk]  # the older one is gone
    page = client_for(researcher).get(f"/projects/{project.slug}/metrics/", {"bootstrap": 20})
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="worker-note"' in html and "recomputing" not in html
    assert f"#{newer.newest_annotation_id}" in html


@pytest.mark.django_db
def test_the_page_says_recomputing_and_shows_the_older_figures(
    project, built, researcher, settings, django_capture_on_commit_callbacks
):
    settings.METRICS_WORKER_THRESHOLD = 0
    url = f"/projects/{project.slug}/metrics/"
    user = researcher
    with django_capture_on_commit_callbacks(execute=False):
        html = client_for(user).get(url, {"bootstrap": 10}).content.decode()
    assert 'data-testid="worker-pending"' in html and "Rater × rater" not in html
    metrics_snapshot_run(snapshot_id=MetricsSnapshot.objects.get().pk)
    item_id = Annotation.objects.filter(project=project).values_list("item_id", flat=True).first()
    with django_capture_on_commit_callbacks(execute=False):
        _jury(project, item_id, "safe")
        cache.clear()
        html = client_for(user).get(url, {"bootstrap": 10}).content.decode()
    assert "recomputing" in html and "Rater × rater" in html


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
def test_a_real_worker_computes_the_snapshot(project, built, settings, tmp_path):
    url = redis_url_or_skip()
    settings.METRICS_WORKER_THRESHOLD = 0
    with broker_in_this_process(url), celery_worker(broker_url=url, log_path=tmp_path / "worker.log"):
        assert project_metrics_shown(project, n_boot=50)["pending"]
        snapshot = MetricsSnapshot.objects.get()

        def finished() -> bool:
            snapshot.refresh_from_db()
            return snapshot.status not in (MetricsSnapshot.Status.PENDING, MetricsSnapshot.Status.RUNNING)

        wait_for(finished, timeout=90, what=f"metrics snapshot #{snapshot.pk}")
        assert snapshot.status == MetricsSnapshot.Status.DONE, snapshot.error
        assert snapshot.claimed_by and snapshot.finished_at <= timezone.now() + timedelta(seconds=5)
        shown = project_metrics_shown(project, n_boot=50)
        assert not shown["recomputing"] and shown["snapshot"]["current"]
        direct = project_metrics(project, n_boot=50, use_cache=False)
        assert {k: shown[k] for k in FIGURES} == {k: direct[k] for k in FIGURES}


@pytest.mark.django_db
def test_a_project_with_many_pairs_of_p_i_goes_to_the_worker_too(project, built, settings):
    from annotation.metrics.services import on_worker
    from annotation.models import Item
    from annotation.services import PreferenceIn

    settings.METRICS_WORKER_THRESHOLD = 10**9
    settings.METRICS_WORKER_PI_PAIRS = 1
    principle = project.principle_set.principles.order_by("order", "code").values_list("pk", flat=True)[0]
    pairs = [(it.pk, *sorted(it.responses.values_list("pk", flat=True))) for it in Item.objects.filter(project=project)]
    assert not on_worker(project)
    services.principle_preferences_record(
        project=project, source="jury", rater="run1", source_detail="default",
        preferences=[PreferenceIn(item_id=i, pair_a_id=a, pair_b_id=b, principle_id=principle, prob_a=0.8, prob_b=0.1,
                                  preference=1) for i, a, b in pairs[:1]],
    )
    assert not on_worker(project)  # one pair: not more than the setting
    services.principle_preferences_record(
        project=project, source="jury", rater="run1", source_detail="default",
        preferences=[PreferenceIn(item_id=i, pair_a_id=a, pair_b_id=b, principle_id=principle, prob_a=0.8, prob_b=0.1,
                                  preference=1) for i, a, b in pairs[1:2]],
    )
    assert on_worker(project)
