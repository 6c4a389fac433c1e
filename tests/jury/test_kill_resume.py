"""A real Celery worker on Redis is SIGKILLed in the middle of a jury run; a new worker finishes the
run with no gaps and no duplicates.

The juror is the real packaged SmolLM2 (one target per batch, small chunks, many items, so the kill
lands inside a chunk that has some but not all of its verdicts). The worker's chunk lease is a few
seconds, so the killed worker's chunk is reclaimed quickly by the new worker, which re-dispatches
unfinished runs when it starts.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from annotation.models import Annotation
from jury import services
from jury.models import JuryChunk, JuryDecision, JuryRun, Verdict
from tests.helpers.worker import broker_in_this_process, celery_worker, redis_url_or_skip, tail, wait_for
from tests.jury.conftest import SMOL, import_items

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.timeout(300)]

N_ITEMS = 18
CHUNK = 3


def _partial_chunk(run: JuryRun) -> JuryChunk | None:
    """A chunk being worked on that has some, but not all, of its verdicts."""
    for chunk in run.chunks.filter(status=JuryChunk.Status.RUNNING):
        n = Verdict.objects.filter(run=run, item_id__in=chunk.item_ids).count()
        if 0 < n < 2 * len(chunk.item_ids):
            return chunk
    return None


@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_run_then_restart_finishes_without_gaps_or_duplicates(project, smol, tmp_path):
    url = redis_url_or_skip()
    rows = [(f"Question {n}: what is {n} plus {n}?", [f"It is {2 * n}.", f"It is {2 * n + 1}."]) for n in range(N_ITEMS)]
    items = import_items(project, rows, tmp_path, prefix="k")
    juror = services.juror_create(name="smol-kill", backend="packaged", model=SMOL["model"], prompt_version="v1",
                                  batch_size=1, max_length=192, device="cpu")
    jury = services.jury_create(name="kill-jury", jurors=[(juror, 1.0)], rule="mean", chunk_size=CHUNK)
    env = {"MODEL_CACHE_DIR": os.environ["MODEL_CACHE_DIR"], "JURY_CHUNK_LEASE_S": "4", "TRIBUNAL_DEVICE": "cpu"}

    with broker_in_this_process(url):
        with celery_worker(broker_url=url, log_path=tmp_path / "worker1.log", extra_env=env) as first:
            run = services.jury_run_start(project=project, jury=jury, task="preference")  # enqueued on commit
            assert run.verdicts_expected == 2 * N_ITEMS
            try:
                wait_for(lambda: _partial_chunk(run) is not None, timeout=120, interval=0.05,
                         what="a chunk with some of its verdicts")
            except AssertionError:
                raise AssertionError(tail(tmp_path / "worker1.log")) from None
            os.killpg(first.pid, signal.SIGKILL)  # the worker and anything it started, no goodbye
            first.wait(10)
            killed_chunk = _partial_chunk(run) or run.chunks.filter(status=JuryChunk.Status.RUNNING).first()
            at_kill = Verdict.objects.filter(run=run).count()
        run.refresh_from_db()
        assert run.status == JuryRun.Status.RUNNING and 0 < at_kill < run.verdicts_expected
        assert killed_chunk is not None
        print(f"killed at {at_kill}/{run.verdicts_expected} verdicts, in chunk {killed_chunk.index}")

        time.sleep(0.5)
        with celery_worker(broker_url=url, log_path=tmp_path / "worker2.log", extra_env=env):
            try:
                wait_for(lambda: JuryRun.objects.get(pk=run.pk).status != JuryRun.Status.RUNNING, timeout=180,
                         what="the run to finish on the new worker")
            except AssertionError:
                raise AssertionError(tail(tmp_path / "worker2.log")) from None

    run.refresh_from_db()
    assert run.status == JuryRun.Status.DONE, (run.errors, tail(tmp_path / "worker2.log"))
    verdicts = Verdict.objects.filter(run=run)
    keys = list(verdicts.values_list("juror_id", "target", "order"))
    # no duplicates, no gaps: every pair of every item judged in both orders, once
    assert len(keys) == len(set(keys)) == run.verdicts_expected
    pairs = {target for _, target, _ in keys}
    assert len(pairs) == N_ITEMS and all((juror.pk, t, o) in set(keys) for t in pairs for o in (0, 1))
    assert {i.pk for i in items} == set(verdicts.values_list("item_id", flat=True))
    # the killed chunk was claimed again and finished
    killed_chunk.refresh_from_db()
    assert killed_chunk.status == JuryChunk.Status.DONE and killed_chunk.attempts >= 2
    # one decision and one jury annotation per item
    assert JuryDecision.objects.filter(run=run).count() == N_ITEMS
    assert Annotation.objects.filter(project=project, source="jury").count() == N_ITEMS
    assert run.chunks.exclude(status=JuryChunk.Status.DONE).count() == 0
