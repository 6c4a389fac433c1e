"""Jury runs through the services, with Celery eager in this process.

The run lifecycle (chunks, reruns, cancel, finalize) uses the fake backend; scoring with the real
packaged models is kept where the test is about the model's judgment (marked ``models``).
(The real-worker, kill-and-resume path is tests/jury/test_kill_resume.py.)
"""
from __future__ import annotations

import pytest

from annotation.models import (
    Annotation,
    Item,
    Principle,
    PrinciplePreference,
    PrincipleSet,
    PriorityRaise,
    Project,
    ResponseSafety,
)
from jury import services
from jury.models import Juror, JuryChunk, JuryDecision, JuryRun, Verdict
from tests.jury.conftest import GEMMA, SMOL


@pytest.fixture
def eager():
    from config.celery import app

    old = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


def _juror(name: str, spec: dict, version: str = "v2") -> Juror:
    return services.juror_create(name=name, backend="packaged", model=spec["model"], prompt_version=version,
                                 batch_size=spec["batch_size"], max_length=spec["max_length"], device="cpu")


@pytest.fixture
def smol_jury(db, smol):
    return services.jury_create(name="smol-only", jurors=[(_juror("smol", SMOL), 1.0)], rule="mean")


def _start(django_capture_on_commit_callbacks, **kwargs) -> JuryRun:
    with django_capture_on_commit_callbacks(execute=True):
        run = services.jury_run_start(**kwargs)
    run.refresh_from_db()
    return run


@pytest.mark.models
def test_safety_run_with_both_packaged_models(eager, django_capture_on_commit_callbacks, project, items, smol, gemma):
    # given a two-juror jury of the packaged models
    jury = services.jury_create(
        name="panel", jurors=[(_juror("smol", SMOL), 1.0), (_juror("gemma", GEMMA, "v1"), 2.0)], rule="weighted",
    )
    # when a researcher runs the safety task over an item (its prompt + 2 responses; one item keeps
    # this CPU test short: the other tests cover several items and chunks)
    run = _start(django_capture_on_commit_callbacks, project=project, jury=jury, task="safety",
                 item_ids=[items[1].pk])
    # then every verdict exists exactly once and the item has a decision and a jury annotation
    assert run.status == JuryRun.Status.DONE, run.errors
    assert run.verdicts_expected == 2 * 1 * 3
    assert Verdict.objects.filter(run=run).count() == run.verdicts_expected
    assert run.decisions_count == 1
    categories = set(project.taxonomy_version.categories.values_list("code", flat=True))
    for decision in JuryDecision.objects.filter(run=run).select_related("annotation", "item"):
        assert decision.rule == "weighted" and decision.task == "safety"
        assert 0.0 <= decision.confidence <= 1.0
        ann = decision.annotation
        assert ann.source == Annotation.Source.JURY and ann.source_detail == "panel" and ann.annotator is None
        assert ann.taxonomy_version_id == project.taxonomy_version_id
        assert ann.prompt_label in ("safe", "needs_caution", "unsafe")
        assert set(ann.prompt_categories) <= categories
        assert ResponseSafety.objects.filter(annotation=ann).count() == 2
        target = decision.details["targets"][f"i{decision.item_id}:prompt"]
        assert set(target["votes"]) == {"smol", "gemma"}
        if decision.escalated:
            assert decision.reasons and decision.item.priority >= 10
    for v in Verdict.objects.filter(run=run):
        assert v.probs["safe"] + v.probs["unsafe"] == pytest.approx(1.0)
        assert sum(v.category_probs.values()) == pytest.approx(v.p_positive, abs=1e-6)
    assert set(run.timings) == {"smol", "gemma"}


def test_rerun_skips_done_work_and_never_duplicates(eager, django_capture_on_commit_callbacks, project, items, fake_jury):
    run = _start(django_capture_on_commit_callbacks, project=project, jury=fake_jury, task="preference", chunk_size=1)
    assert run.status == JuryRun.Status.DONE
    before = set(Verdict.objects.filter(run=run).values_list("id", flat=True))
    annotations = Annotation.objects.filter(source="jury").count()
    # when a chunk is processed again (a redelivered message after a crash)
    chunk = run.chunks.first()
    JuryChunk.objects.filter(pk=chunk.pk).update(status=JuryChunk.Status.PENDING, timings={})
    JuryRun.objects.filter(pk=run.pk).update(status=JuryRun.Status.RUNNING)
    assert services.jury_chunk_claim(chunk_id=chunk.pk, worker="again")[0] == "claimed"
    assert services.jury_chunk_process(chunk_id=chunk.pk, worker="again") == "done"
    # then nothing was scored again and nothing was written twice
    chunk.refresh_from_db()
    assert chunk.timings == {}  # the juror had no target left to score
    assert set(Verdict.objects.filter(run=run).values_list("id", flat=True)) == before
    services.jury_run_finalize(run_id=run.pk)
    assert Annotation.objects.filter(source="jury").count() == annotations
    assert JuryDecision.objects.filter(run=run).count() == 3


@pytest.mark.models
def test_preference_run_judges_both_orders_and_flags_position_flips(
    eager, django_capture_on_commit_callbacks, project, items, smol_jury
):
    run = _start(django_capture_on_commit_callbacks, project=project, jury=smol_jury, task="preference")
    assert run.status == JuryRun.Status.DONE, run.errors
    verdicts = list(Verdict.objects.filter(run=run).order_by("target", "order"))
    assert len(verdicts) == run.verdicts_expected == 3 * 2  # one pair per item, both orders
    for first, second in zip(verdicts[::2], verdicts[1::2]):
        assert (first.target, first.order, second.order) == (second.target, 0, 1)
        # the canonical choice of each order: order 1 shows the pair swapped
        pick0 = "a" if first.label == "A" else "b"
        pick1 = "b" if second.label == "A" else "a"
        assert first.position_consistent is second.position_consistent is (pick0 == pick1)
    for decision in JuryDecision.objects.filter(run=run).select_related("annotation"):
        ann = decision.annotation
        assert ann.source == "jury" and ann.pair_a_id and ann.pair_b_id
        assert sorted(sum(ann.ranking, [])) == sorted([ann.pair_a_id, ann.pair_b_id])
        pair = next(iter(decision.details["pairs"].values()))
        if not all(pair["position_consistent"].values()):
            assert decision.escalated
            assert any("position-inconsistent" in r for r in decision.reasons)


def test_principles_run_gives_prob_a_b_na_per_principle(eager, django_capture_on_commit_callbacks, project, items, fake_jury):
    # three of the default principles (admin configuration; the full set of 17 only costs CPU time)
    small = PrincipleSet.objects.create(slug="small", name="Small")
    for p in project.principle_set.principles.order_by("order")[:3]:
        Principle.objects.create(principle_set=small, code=p.code, short=p.short, text=p.text, group=p.group, order=p.order)
    Project.objects.filter(pk=project.pk).update(principle_set=small)
    project.refresh_from_db()
    principles = list(small.principles.values_list("code", flat=True))
    run = _start(django_capture_on_commit_callbacks, project=project, jury=fake_jury, task="principles",
                 item_ids=[items[2].pk])
    assert run.status == JuryRun.Status.DONE, run.errors
    assert Verdict.objects.filter(run=run).count() == 2 * len(principles)
    decision = JuryDecision.objects.get(run=run)
    assert decision.annotation is None
    assert set(decision.details["principles"]) == set(principles)
    for per_pair in decision.details["principles"].values():
        (values,) = per_pair.values()
        assert values["prob_A"] + values["prob_B"] + values["prob_NA"] == pytest.approx(1.0, abs=1e-4)
        assert values["p"] in (1, -1, None)
    assert decision.label in ("consensus", "conflict", "indifference")
    # the panel's p_i are recorded in annotation, one row per principle and pair, as in the details
    stored = PrinciplePreference.objects.filter(project=project, source="jury", rater=f"run{run.pk}")
    assert stored.count() == len(principles)
    for pref in stored.select_related("principle"):
        (cell,) = decision.details["principles"][pref.principle.code].values()
        assert (pref.prob_a, pref.prob_b, pref.preference) == (cell["prob_A"], cell["prob_B"], cell["p"])
        assert pref.source_detail == "fake-panel" and pref.item_id == items[2].pk


def test_cancelled_run_stops(eager, django_capture_on_commit_callbacks, project, items, fake_jury):
    # given a run that was started but not yet dispatched
    with django_capture_on_commit_callbacks(execute=False):
        run = services.jury_run_start(project=project, jury=fake_jury, task="safety")
    # when it is cancelled, then dispatched
    services.jury_run_cancel(run=run)
    services.jury_run_dispatch(run_id=run.pk)
    # then nothing runs, and it cannot be cancelled twice
    run.refresh_from_db()
    assert run.status == JuryRun.Status.CANCELLED and run.verdicts.count() == 0
    with pytest.raises(ValueError):
        services.jury_run_cancel(run=run)


def test_a_task_the_project_cannot_do_is_a_clear_error(project, fake_jury, other_project):
    with pytest.raises(ValueError, match="principle set"):
        services.jury_run_start(project=other_project, jury=fake_jury, task="principles")
    with pytest.raises(ValueError, match="Unknown jury task"):
        services.jury_run_start(project=project, jury=fake_jury, task="vibes")


def test_default_jury_is_idempotent(db):
    first = services.jury_ensure_default()
    second = services.jury_ensure_default()
    assert first.pk == second.pk
    assert sorted(first.jurors.values_list("model_spec__model", flat=True)) == ["gemma3-270m", "smollm2-135m-instruct"]
    assert set(first.jurors.values_list("model_spec__backend", flat=True)) == {"packaged"}
    assert Item.objects.count() == 0


@pytest.mark.models
def test_a_juror_that_cannot_judge_fails_the_run_clearly_and_resume_finishes_it(
    eager, django_capture_on_commit_callbacks, project, items, smol
):
    """An OpenAI-compatible juror whose server is down (HTTP 503, no retries allowed): the run fails
    with the reason and nothing half-written; once the server answers, resuming finishes the run."""
    from tests.jury.openai_server import Server, model_scorer

    with Server(model_scorer(smol.model, smol.tokenizer), fail_first=1) as server:
        juror = services.juror_create(name="remote", backend="openai", model="smollm2", endpoint=server.url,
                                      prompt_version="v1", batch_size=8, max_length=384, timeout_s=120,
                                      max_retries=0, use_chat_template=False)
        jury = services.jury_create(name="remote-jury", jurors=[(juror, 1.0)])
        run = _start(django_capture_on_commit_callbacks, project=project, jury=jury, task="preference")
        assert run.status == JuryRun.Status.FAILED
        assert run.errors[0]["juror"] == "remote" and "HTTP 503" in run.errors[0]["error"]
        assert not JuryDecision.objects.filter(run=run).exists()
        with django_capture_on_commit_callbacks(execute=True):
            services.jury_run_resume(run=run)
    run.refresh_from_db()
    assert run.status == JuryRun.Status.DONE, run.errors
    assert Verdict.objects.filter(run=run).count() == run.verdicts_expected == 6
    assert JuryDecision.objects.filter(run=run).count() == 3


@pytest.mark.models
def test_a_cuda_juror_on_a_cpu_worker_fails_with_a_clear_error(eager, django_capture_on_commit_callbacks, project, items):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this worker has CUDA")
    juror = services.juror_create(name="gpu", backend="packaged", model=SMOL["model"], device="cuda")
    jury = services.jury_create(name="gpu-jury", jurors=[(juror, 1.0)])
    run = _start(django_capture_on_commit_callbacks, project=project, jury=jury, task="safety")
    assert run.status == JuryRun.Status.FAILED
    assert "CUDA is not available" in run.errors[0]["error"]


def test_a_judgment_that_flips_with_the_order_is_stored_as_position_inconsistent(
    eager, django_capture_on_commit_callbacks, project, items
):
    """A juror that always answers "A" (a pure position bias), served over HTTP: every pair's two
    orders disagree about which response is better, so every verdict is stored as
    position-inconsistent and every decision is escalated with that reason."""
    from tests.jury.openai_server import Server

    def always_a(prompt: str) -> dict:
        for label, lp in ((" A", -0.05), (" B", -3.0)):
            if prompt.endswith(label):
                cut = len(prompt) - len(label)
                return {"tokens": [prompt[:cut], label, "."], "token_logprobs": [None, lp, -1.0],
                        "text_offset": [0, cut, len(prompt)], "top_logprobs": None}
        raise AssertionError(f"unexpected label in {prompt[-20:]!r}")

    with Server(always_a) as server:
        juror = services.juror_create(name="biased", backend="openai", model="m", endpoint=server.url,
                                      prompt_version="v1", use_chat_template=False)
        jury = services.jury_create(name="biased-jury", jurors=[(juror, 1.0)], rule="mean")
        run = _start(django_capture_on_commit_callbacks, project=project, jury=jury, task="preference")
    assert run.status == JuryRun.Status.DONE, run.errors
    verdicts = Verdict.objects.filter(run=run)
    assert verdicts.count() == 6 and set(verdicts.values_list("label", flat=True)) == {"A"}
    assert set(verdicts.values_list("position_consistent", flat=True)) == {False}
    for decision in JuryDecision.objects.filter(run=run).select_related("item", "annotation"):
        assert decision.escalated
        assert any("position-inconsistent: biased" in r for r in decision.reasons)
        # averaged over both orders the bias cancels: a tie, shown to humans first
        assert decision.annotation.pair_choice == "tie" and decision.item.priority >= 10
        raised = PriorityRaise.objects.get(item=decision.item, source="jury", source_detail=f"run {run.pk}")
        assert raised.priority == decision.item.priority and "position-inconsistent: biased" in raised.reason
