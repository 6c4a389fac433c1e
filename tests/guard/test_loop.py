"""Closing the loop: the guard's unsure / disagreeing items go back to people, and a retrain
compares the new version with the old on the same sets.

The rules (``exports.guard.loop``) are checked on literal inputs; the whole loop is walked once,
end to end, on the real MiniLM: import -> annotate as two annotators -> train -> ready -> guard jury
run -> priorities raised with reasons -> more labels -> retrain -> v2 ready -> both versions'
metrics stored with their deltas.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from django.urls import reverse

from exports.guard.loop import (
    Finding,
    LoopPolicy,
    TargetScore,
    item_raise,
    metric_deltas,
    normalised_entropy,
    response_names,
    target_findings,
)
from tests.guard.conftest import SAFE, UNSAFE, tiny_rows, write_jsonl

# --- the rules, on literal inputs -------------------------------------------------------------------


@pytest.mark.parametrize("probs", [[0.5, 0.3, 0.2], [0.1, 0.1], [0.9, 0.05, 0.03, 0.02], [0.2, 0.0, 0.6]])
def test_normalised_entropy_matches_scipy(probs):
    from scipy.stats import entropy

    assert normalised_entropy(probs) == pytest.approx(entropy(probs) / math.log(len(probs)), abs=1e-9)


def test_normalised_entropy_edges():
    assert normalised_entropy([0.7]) is None and normalised_entropy([0.0, 0.0]) is None
    assert normalised_entropy([3.0, 0.0, 0.0, 0.0]) == 0.0


POLICY = LoopPolicy(margin=0.1, entropy=0.8, unsure_priority=5, disagree_priority=8)


def test_near_the_threshold_is_unsure_and_far_is_not():
    near = target_findings(TargetScore("the prompt", 0.48, {}), threshold=0.5, policy=POLICY)
    assert [(f.kind, f.text) for f in near] == [("unsure", "unsure on the prompt: P(unsafe) 0.48 near threshold 0.50")]
    # the margin is strict and measured from the guard's own threshold, not 0.5
    assert target_findings(TargetScore("the prompt", 0.48, {}), threshold=0.7, policy=POLICY) == []
    assert [f.kind for f in target_findings(TargetScore("the prompt", 0.65, {}), threshold=0.7, policy=POLICY)] == ["unsure"]


def test_disagreement_with_people_both_ways():
    f = target_findings(TargetScore("response B", 0.93, {"S1": 0.9, "S3": 0.03}, human="safe"), threshold=0.5, policy=POLICY)
    assert [(x.kind, x.text, x.priority) for x in f] == [
        ("disagree", "disagrees with consensus on response B: unsafe 0.93 vs human safe", 8)]
    f = target_findings(TargetScore("the prompt", 0.02, {}, human="unsafe"), threshold=0.5, policy=POLICY)
    assert [x.text for x in f] == ["disagrees with consensus on the prompt: safe 0.02 vs human unsafe"]
    # agreeing, or no human label (None: unlabelled or a tie), is not a disagreement
    assert target_findings(TargetScore("the prompt", 0.02, {}, human="safe"), threshold=0.5, policy=POLICY) == []
    assert target_findings(TargetScore("the prompt", 0.02, {}, human=None), threshold=0.5, policy=POLICY) == []


def test_an_unsure_category_counts_only_when_the_guard_says_unsafe():
    spread = {"S1": 0.3, "S3": 0.3, "S5": 0.29}
    f = target_findings(TargetScore("the prompt", 0.89, spread), threshold=0.5, policy=POLICY)
    assert [x.kind for x in f] == ["category"]
    assert f[0].text.startswith("unsure of the category on the prompt: entropy 1.00 (S1 0.34, S3 0.34, S5 0.33)")
    # the same spread on a safe verdict means nothing; one dominant category is sure
    assert target_findings(TargetScore("the prompt", 0.05, spread), threshold=0.5, policy=POLICY) == []
    assert target_findings(TargetScore("the prompt", 0.89, {"S1": 0.88, "S3": 0.01}), threshold=0.5, policy=POLICY) == []


def test_one_raise_per_item_names_the_guard_and_every_finding():
    findings = [
        Finding("unsure", "the prompt", "unsure on the prompt: P(unsafe) 0.48 near threshold 0.50", 5),
        Finding("disagree", "response A", "disagrees with consensus on response A: unsafe 0.93 vs human safe", 8),
    ]
    priority, reason = item_raise("toxic v2", findings)
    assert priority == 8
    assert reason == ("guard toxic v2 disagrees with consensus on response A: unsafe 0.93 vs human safe; "
                      "unsure on the prompt: P(unsafe) 0.48 near threshold 0.50")
    assert item_raise("toxic v2", []) is None
    long = [Finding("unsure", "x", "y" * 600, 5)]
    assert len(item_raise("g v1", long)[1]) == 500


def test_responses_are_named_by_letter_in_position_order():
    assert response_names({903: 2, 901: 0, 902: 1}) == {901: "response A", 902: "response B", 903: "response C"}


def test_policy_from_settings_refuses_unknown_or_bad_options():
    assert LoopPolicy.from_settings({"margin": 0.2}).margin == 0.2
    with pytest.raises(ValueError, match="unknown option"):
        LoopPolicy.from_settings({"margn": 0.2})
    with pytest.raises(ValueError, match="margin"):
        LoopPolicy.from_settings({"margin": 1.5})


def test_metric_deltas_on_literal_reports():
    def rep(**b):
        return {"binary": b}

    current = {"validation": rep(f1=0.8, auroc=0.9, ece=0.05, n=10),
               "evaluations": {"file.jsonl": rep(f1=0.7, auroc=0.8, ece=0.10, n=48), "only-new": rep(f1=1.0),
                               "broken": {"error": "no such file"}}}
    previous = {"validation": rep(f1=0.6, auroc=0.9, ece=0.15, n=8),
                "evaluations": {"file.jsonl": rep(f1=0.75, auroc=None, ece=0.05, n=48), "broken": rep(f1=0.5)}}
    d = metric_deltas(current, previous)
    assert list(d) == ["validation", "file.jsonl"]  # only sets both have, neither errored; validation first
    assert d["validation"]["f1"] == {"current": 0.8, "previous": 0.6, "delta": pytest.approx(0.2), "better": True}
    assert d["validation"]["auroc"]["better"] is None and d["validation"]["auroc"]["delta"] == 0.0
    assert d["validation"]["ece"]["delta"] == pytest.approx(-0.1) and d["validation"]["ece"]["better"] is True
    assert d["file.jsonl"]["f1"]["better"] is False and d["file.jsonl"]["ece"]["better"] is False
    assert d["file.jsonl"]["auroc"] == {"current": 0.8, "previous": None, "delta": None, "better": None}
    assert d["file.jsonl"]["n"] == {"current": 48, "previous": 48}


def test_a_failing_after_run_hook_is_logged_and_the_next_one_still_runs(monkeypatch, caplog):
    from jury.services import finalize

    calls = []
    monkeypatch.setattr(finalize, "_AFTER_RUN_HOOKS", [])
    monkeypatch.setattr(finalize, "_calls", calls, raising=False)
    finalize.register_after_run_hook("tests.guard.test_loop:_boom")
    finalize.register_after_run_hook("tests.guard.test_loop:_note")
    finalize.register_after_run_hook("tests.guard.test_loop:_note")  # once only
    finalize._run_after_run_hooks(run=_FakeRun())
    assert calls == ["noted 7"]
    assert "after-run hook tests.guard.test_loop:_boom failed on jury run 7" in caplog.text


class _FakeRun:
    pk = 7


def _boom(*, run):
    raise RuntimeError("hook bug")


def _note(*, run):
    from jury.services import finalize

    finalize._calls.append(f"noted {run.pk}")


# --- the retrain action: who may ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["admin", "researcher", "annotator", "outsider"])
def test_retrain_page_and_api_only_for_researchers_and_admins(persona, login, project, tmp_path):
    from exports.guard.models import GuardModel, GuardTraining

    v1 = GuardModel.objects.create(name="g", version=1, taxonomy_version=project.taxonomy_version, base="b",
                                   recipe="baseline", source="project", source_ref=project.slug, project=project,
                                   status="ready", path=str(tmp_path))
    GuardTraining.objects.create(guard_model=v1, status="done", config={"recipe": "baseline", "seed": 7, "epochs": 2},
                                 source_spec={"kind": "project", "slug": project.slug, "needs_caution": "permissive"})
    c = login(persona)
    page = c.post(reverse("guard-action", args=[project.slug, v1.pk, "retrain"]))
    api = c.post(reverse("api-guard-retrain", args=[project.slug, v1.pk]), data={"config": {"epochs": 1}},
                 content_type="application/json")
    if persona in ("annotator", "outsider"):
        assert (page.status_code, api.status_code) == (404, 404)
        assert GuardModel.objects.filter(name="g").count() == 1
        return
    assert page.status_code == 302 and api.status_code == 201, api.content
    v2, v3 = GuardModel.objects.filter(name="g", version__gt=1).order_by("version")
    assert page["Location"] == reverse("guard-detail", args=[project.slug, v2.pk])
    assert api.json()["version"] == 3 and api.json()["status"] == "training"
    assert [v["version"] for v in api.json()["versions"]] == [3, 2, 1]
    # same recipe and seed; the API's override changes only what it names; lineage in the spec
    assert (v2.training.config["seed"], v2.training.config["epochs"], v3.training.config["epochs"]) == (7, 2, 1)
    assert v2.training.source_spec == {"kind": "project", "slug": project.slug, "needs_caution": "permissive",
                                       "retrain_of": {"id": v1.pk, "name": "g", "version": 1}}
    assert (v2.recipe, v2.project_id, v2.status) == ("baseline", project.pk, "training")
    detail = c.get(reverse("guard-detail", args=[project.slug, v2.pk]))
    assert b"v2 compared with v1" in detail.content and b"once this one is ready" in detail.content


@pytest.mark.django_db
def test_retrain_refuses_a_guard_in_training_or_without_project(project, tmp_path):
    from exports.guard import services
    from exports.guard.models import GuardModel

    training = GuardModel.objects.create(name="t", version=1, taxonomy_version=project.taxonomy_version, base="b",
                                         recipe="baseline", source="project", project=project)
    with pytest.raises(services.GuardError, match="still training"):
        services.guard_retrain_request(guard_model=training)
    from_file = GuardModel.objects.create(name="f", version=1, taxonomy_version=project.taxonomy_version, base="b",
                                          recipe="baseline", source="file", status="ready", path=str(tmp_path))
    with pytest.raises(services.GuardError, match="not trained from a project"):
        services.guard_retrain_request(guard_model=from_file)


# --- the whole loop, end to end on the real MiniLM ---------------------------------------------------

CATEGORY = {"S1": "S1", "S3": "S3"}


def _items_file(tmp_path: Path, prefix: str, n_rounds: int) -> tuple[Path, dict[str, dict[str, str | None]]]:
    """Own-format items: unsafe and safe prompts with one response; returns the truth by id."""
    rows: list[dict] = []
    truth: dict[str, dict[str, str | None]] = {}
    for i in range(n_rounds):
        for j, (text, code) in enumerate(UNSAFE):
            ident = f"{prefix}u{i}-{j}"
            rows.append({"id": ident, "prompt": f"{text} ({prefix}{i})", "responses": ["I cannot help with that."]})
            truth[ident] = {"prompt": "unsafe", "code": code}
        for j, text in enumerate(SAFE):
            ident = f"{prefix}s{i}-{j}"
            rows.append({"id": ident, "prompt": f"{text} ({prefix}{i})", "responses": [f"Here is an answer about {text.lower()}."]})
            truth[ident] = {"prompt": "safe", "code": None}
    return write_jsonl(tmp_path / f"{prefix}.jsonl", rows), truth


def _annotate_all(project, annotators, truth, *, flip: frozenset[str] | set[str] = frozenset()) -> int:
    """Each annotator takes items from the queue and labels them by the truth (``flip``: both
    annotators give the opposite prompt label, a label error for the guard to catch)."""
    from annotation.workbench import services as wb
    from annotation.workbench.judgments import Judgment, ResponseLabel

    done = 0
    for user in annotators:
        while (lease := wb.queue_next(project=project, annotator=user)) is not None:
            t = truth[lease.item.external_id]
            label = t["prompt"]
            if lease.item.external_id in flip:
                label = "safe" if label == "unsafe" else "unsafe"
            cats = (t["code"] or "S1",) if label == "unsafe" else ()
            wb.annotation_submit(project=project, annotator=user, item_id=lease.item_id, judgment=Judgment(
                prompt_label=label, prompt_categories=cats,
                response_labels={rid: ResponseLabel("safe") for rid in lease.shown_order}))
            done += 1
    return done


@pytest.mark.models
@pytest.mark.timeout(900)
@pytest.mark.django_db
def test_the_whole_loop(presets, researcher, tmp_path, settings, client, django_capture_on_commit_callbacks):
    from scipy.stats import entropy

    from annotation import services as core
    from annotation.importing import import_file
    from annotation.models import ImportBatch, Item, Membership, PriorityRaise
    from annotation.workbench import selectors as wb_selectors
    from config.celery import app
    from exports.guard import services
    from exports.guard.models import GuardModel
    from jury import services as jury_services
    from jury.models import JuryRun, Verdict
    from tests.annotation.workbench_fixtures import make_annotators

    settings.GUARD_DIR = tmp_path / "guards"
    settings.GUARD_LOOP = {"margin": 0.15}
    project = core.project_create(slug="loop", name="Loop <b>demo</b>", taxonomy_version=presets["taxonomies"]["aegis-2.0"],
                                  mode="safety", overlap=2, created_by=researcher)
    core.membership_set(project=project, user=researcher, role=Membership.Role.RESEARCHER)

    # import: 36 items through the real import service, own JSONL format
    path, truth = _items_file(tmp_path, "a", 3)
    batch = import_file(project=project, path=path, source_name=path.name, fmt="tribunal")
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert Item.objects.filter(project=project).count() == 36
    # annotate as two annotators (the workbench services), with two label errors both make
    annotators = make_annotators(project, 2)
    flipped = {"au0-0", "as0-0"}  # a pipe bomb called safe, a capital of France called unsafe
    assert _annotate_all(project, annotators, truth, flip=flipped) == 72

    # train v1 from the project's consensus (baseline recipe), in this process
    job = services.guard_training_request(name="loop-guard", taxonomy_version=project.taxonomy_version,
                                          source_spec={"kind": "project", "slug": project.slug},
                                          config={"recipe": "baseline", "seed": 3, "max_length": 64},
                                          user=researcher, project=project, background=False)
    job = services.guard_training_run(training_id=job.pk)
    v1 = GuardModel.objects.get(pk=job.guard_model_id)
    assert (v1.status, v1.version, v1.counts["all"]["items"]) == ("ready", 1, 36), v1.error
    # an evaluation set stored on v1 (a labelled file), which the retrain must evaluate again
    held_out = write_jsonl(tmp_path / "held-out.jsonl", tiny_rows(repeats=2))
    evaluation = services.guard_evaluation_request(guard_model=v1, data_name="held-out.jsonl", background=False,
                                                   source_spec={"kind": "file", "path": str(held_out)})
    assert services.guard_evaluation_run(evaluation_id=evaluation.pk).status == "done"
    # and one whose file has since gone: v1 keeps its report, v2 says why it has none
    gone = {"binary": {"n": 4, "f1": 0.5}, "data": {"name": "gone.jsonl", "source": {"kind": "file", "path": str(tmp_path / "gone.jsonl")}}}
    services.guard_model_store_evaluation(guard_model=v1, data_name="gone.jsonl", report=gone)

    # the guard on the jury: the real run service, Celery eager in this process
    juror = jury_services.juror_create(name="loop-guard-v1", backend="guard", model=v1.path, device="cpu", batch_size=16)
    jury = jury_services.jury_create(name="guard-panel", jurors=[(juror, 1.0)])
    old = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = jury_services.jury_run_start(project=project, jury=jury, task="safety", user=researcher)
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = old
    run.refresh_from_db()
    assert run.status == JuryRun.Status.DONE, run.errors

    # priorities raised: exactly the items the rules name, recomputed here from the stored verdicts
    threshold = json.loads((Path(v1.path) / "guard.json").read_text())["threshold"]
    human = {ext: ("safe" if t["prompt"] == "unsafe" else "unsafe") if ext in flipped else t["prompt"]
             for ext, t in truth.items()}
    expected: dict[str, set[str]] = {}
    for v in Verdict.objects.filter(run=run).select_related("item"):
        ext, kinds = v.item.external_id, set()
        people = human[ext] if v.response_id is None else "safe"
        if (v.p_positive >= threshold) != (people == "unsafe"):
            kinds.add("disagrees")
        if abs(v.p_positive - threshold) < 0.15:
            kinds.add("unsure on")
        cats = list(v.category_probs.values())
        if v.p_positive >= threshold and len(cats) > 1 and entropy(cats) / math.log(len(cats)) >= 0.8:
            kinds.add("unsure of the category")
        if kinds:
            expected.setdefault(ext, set()).update(kinds)
    raises = {r.item.external_id: r for r in PriorityRaise.objects.filter(project=project, source="guard").select_related("item")}
    assert raises, "the guard found nothing to send back: the loop is not exercised"
    assert set(raises) == set(expected)
    for ext, r in raises.items():
        assert r.source_detail == "loop-guard v1" and r.reason.startswith("guard loop-guard v1 ")
        for kind in ("disagrees", "unsure on", "unsure of the category"):
            assert (kind in r.reason) == (kind in expected[ext]), (r.reason, expected[ext])
        assert r.priority == (8 if "disagrees" in expected[ext] else 5) and r.item.priority >= r.priority
        assert not re.search(r"\bi\d+:|:r\d+\b|#\d+", r.reason), r.reason  # no raw ids or keys
    # the planted label errors are caught as disagreements
    caught = {ext for ext in flipped if "disagrees" in expected.get(ext, set())}
    assert caught, "neither planted label error was caught"
    for ext in caught:
        assert "disagrees with consensus on the prompt" in raises[ext].reason

    # they appear in adjudication with that reason (list and item page, escaped)
    rows = {row.item.external_id: row for row in wb_selectors.adjudication_queue(project)}
    for ext, r in raises.items():
        assert r.reason in rows[ext].raised
    client.force_login(researcher)
    some = next(iter(raises.values()))
    page = client.get(reverse("adjudication-item", args=[project.slug, some.item_id]))
    assert page.status_code == 200 and some.reason.encode() in page.content

    # idempotent: the same run reviewed again (a resumed finalisation) raises nothing twice
    count = PriorityRaise.objects.filter(project=project).count()
    assert services.guard_run_review(run=run) == len(raises)
    assert PriorityRaise.objects.filter(project=project).count() == count

    # more labels: 24 new items, annotated by both
    path2, truth2 = _items_file(tmp_path, "b", 2)
    assert import_file(project=project, path=path2, source_name=path2.name, fmt="tribunal").status == ImportBatch.Status.DONE
    assert _annotate_all(project, annotators, truth2) == 48

    # retrain: v2 from the current consensus, same recipe and seed, then both versions compared
    job2 = services.guard_retrain_request(guard_model=v1, user=researcher, background=False)
    job2 = services.guard_training_run(training_id=job2.pk)
    v2 = GuardModel.objects.get(pk=job2.guard_model_id)
    v1.refresh_from_db()
    assert (v2.status, v2.version, v2.name, v2.recipe) == ("ready", 2, "loop-guard", "baseline"), v2.error
    assert job2.config == {**job.config}  # the same configuration, seed included
    assert v2.counts["all"]["items"] == 60 and v1.counts["all"]["items"] == 36
    sets = {"held-out.jsonl", "project:loop"}
    assert set(v1.metrics["evaluations"]) == set(v2.metrics["evaluations"]) == sets | {"gone.jsonl"}
    assert v1.metrics["evaluations"]["gone.jsonl"]["binary"]["f1"] == 0.5
    assert "no such file" in v2.metrics["evaluations"]["gone.jsonl"]["error"]
    for name in sets:  # the same data for both
        assert v1.metrics["evaluations"][name]["binary"]["n"] == v2.metrics["evaluations"][name]["binary"]["n"]
    assert v2.metrics["evaluations"]["project:loop"]["binary"]["n"] == 120  # 60 prompts + 60 responses
    comparison = v2.metrics["comparison"]
    assert comparison["previous"] == {"id": v1.pk, "name": "loop-guard", "version": 1}
    assert set(comparison["sets"]) == {"validation", *sets}
    for name in sets:
        for key in ("f1", "auroc", "ece"):
            a = v2.metrics["evaluations"][name]["binary"][key]
            b = v1.metrics["evaluations"][name]["binary"][key]
            d = comparison["sets"][name][key]
            assert (d["current"], d["previous"]) == (a, b)
            assert d["delta"] == (None if a is None or b is None else pytest.approx(a - b))

    # the detail page shows the deltas against v1, escaped; v1's lists both versions
    page = client.get(reverse("guard-detail", args=[project.slug, v2.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "v2 compared with v1" in html and "held-out.jsonl" in html and "project:loop" in html
    f1 = comparison["sets"]["held-out.jsonl"]["f1"]["delta"]
    assert f"{f1:+.3f}" in html
    assert "Loop <b>demo</b>" not in html and "Loop &lt;b&gt;demo&lt;/b&gt;" in html
    page1 = client.get(reverse("guard-detail", args=[project.slug, v1.pk])).content.decode()
    assert f'href="{reverse("guard-detail", args=[project.slug, v2.pk])}"' in page1
