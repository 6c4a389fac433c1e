"""The registry and the training job: one promoted guard per taxonomy version, failures never
become ready, cancel and resume through the job kit."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from annotation.jobs import JobStatus, job_kinds
from exports.guard import services
from exports.guard.manifest import GuardManifestError, check_taxonomy, read_manifest
from exports.guard.models import GuardModel, GuardTraining
from tests.guard.conftest import write_jsonl

pytestmark = pytest.mark.django_db


def _guard(version, name="g", status=GuardModel.Status.READY, path="/x"):
    return GuardModel.objects.create(name=name, version=version, taxonomy_version=version_fixture(), base="b",
                                     recipe="baseline", source="file", status=status, path=path)


def version_fixture():
    from annotation.models import TaxonomyVersion

    return TaxonomyVersion.objects.get(taxonomy__slug="aegis-2.0")


def test_the_database_allows_one_promoted_guard_per_taxonomy_version(presets):
    _guard(1, status=GuardModel.Status.PROMOTED)
    with pytest.raises(IntegrityError), transaction.atomic():
        _guard(2, status=GuardModel.Status.PROMOTED)
    with pytest.raises(IntegrityError), transaction.atomic():
        _guard(3, status=GuardModel.Status.READY, path="")  # a usable guard always has its folder


def test_promote_moves_the_mark_and_refuses_unready_guards(presets):
    one, two = _guard(1), _guard(2)
    services.guard_model_promote(guard_model=one)
    services.guard_model_promote(guard_model=two)
    one.refresh_from_db()
    assert (one.status, GuardModel.objects.get(pk=two.pk).status) == ("ready", "promoted")
    failed = _guard(3, status=GuardModel.Status.FAILED, path="")
    with pytest.raises(services.GuardError, match="Only a ready guard"):
        services.guard_model_promote(guard_model=failed)


def test_bad_data_ends_failed_with_no_folder(presets, guard_dir, tmp_path):
    # given: a file with one class only
    path = write_jsonl(tmp_path / "safe.jsonl", [{"prompt": f"p{i}", "label": "safe"} for i in range(6)])
    job = services.guard_training_request(name="g", taxonomy_version=version_fixture(), background=False,
                                          source_spec={"kind": "file", "path": str(path)}, config={"recipe": "baseline"})
    # when
    job = services.guard_training_run(training_id=job.pk)
    # then
    gm = job.guard_model
    assert (job.status, gm.status) == (JobStatus.FAILED, GuardModel.Status.FAILED)
    assert "needs both safe and unsafe" in gm.error and gm.path == ""
    assert not guard_dir.exists() or not any(guard_dir.iterdir())
    # a second delivery of the task does nothing
    assert services.guard_training_run(training_id=job.pk).status == JobStatus.FAILED


def test_versions_count_up_and_bad_options_register_nothing(presets, tmp_path):
    spec = {"kind": "file", "path": str(tmp_path / "x.jsonl")}
    a = services.guard_training_request(name="g", taxonomy_version=version_fixture(), source_spec=spec, background=False)
    b = services.guard_training_request(name="g", taxonomy_version=version_fixture(), source_spec=spec, background=False)
    assert (a.guard_model.version, b.guard_model.version) == (1, 2)
    with pytest.raises(services.GuardError, match="recipe must be one of"):
        services.guard_training_request(name="h", taxonomy_version=version_fixture(), source_spec=spec,
                                        config={"recipe": "magic"})
    with pytest.raises(services.GuardError, match="Unknown guard training option"):
        services.guard_training_request(name="h", taxonomy_version=version_fixture(), source_spec=spec,
                                        config={"epochz": 1})
    assert not GuardModel.objects.filter(name="h").exists()


def test_cancel_and_resume_use_the_job_kit(presets, tmp_path, django_capture_on_commit_callbacks, monkeypatch):
    spec = {"kind": "file", "path": str(tmp_path / "x.jsonl")}
    job = services.guard_training_request(name="g", taxonomy_version=version_fixture(), source_spec=spec, background=False)
    assert services.guard_training_cancel(training=job)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.guard_model.status == GuardModel.Status.FAILED
    # a RUNNING background job whose worker (a dead pid on this host) is gone is handed back
    other = services.guard_training_request(name="g", taxonomy_version=version_fixture(), source_spec=spec, background=False)
    import socket

    GuardTraining.objects.filter(pk=other.pk).update(background=True, status=JobStatus.RUNNING,
                                                     claimed_by=f"{socket.gethostname()}:999999", step=7)
    queued = []
    from exports.guard import tasks

    monkeypatch.setattr(tasks.guard_train_task, "delay", lambda pk: queued.append(pk))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.guard_jobs_resume() == [other.pk]
    other.refresh_from_db()
    assert (other.status, other.step, queued) == (JobStatus.PENDING, 0, [other.pk])


def test_guard_training_is_job_kind_four_on_the_gpu_queue(settings):
    import exports.guard.tasks  # noqa: F401 (registers the kind)

    kinds = {k.name: k for k in job_kinds()}
    assert kinds["guard-training"].queue == "gpu" and kinds["guard-training"].resume_task == "exports.guard.resume"
    from config.celery import app

    for name in ("exports.guard.train", "exports.guard.resume"):
        assert name in app.tasks
        assert app.amqp.router.route({}, name)["queue"].name == "gpu"


def test_corrupt_or_foreign_guard_json_is_a_clear_error(tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    with pytest.raises(GuardManifestError, match="has no guard.json"):
        read_manifest(folder)
    (folder / "guard.json").write_text("{not json")
    with pytest.raises(GuardManifestError, match="corrupt: not valid JSON"):
        read_manifest(folder)
    (folder / "guard.json").write_text('{"format": "tribunal-guard/1", "threshold": 2}')
    with pytest.raises(GuardManifestError, match="missing 'taxonomy'"):
        read_manifest(folder)


@pytest.mark.models
@pytest.mark.timeout(600)
def test_a_folder_for_another_taxonomy_is_refused(baseline_folder):
    m = read_manifest(baseline_folder)
    check_taxonomy(m, slug="aegis-2.0", version=1)
    with pytest.raises(GuardManifestError, match="trained for taxonomy aegis-2.0 v1, not llama-guard-3 v1"):
        check_taxonomy(m, slug="llama-guard-3", version=1)


@pytest.mark.models
@pytest.mark.timeout(600)
def test_the_guard_backend_answers_the_safety_task(baseline_folder, tmp_path):
    # given: a guard juror's spec and a safety target as the jury builds it
    from exports.guard.ml.modeling import LoadedGuard
    from jury import judging
    from jury.backends.registry import build_backend, spec_errors

    spec = {"backend": "guard", "model": str(baseline_folder), "batch_size": 8, "device": "cpu"}
    assert spec_errors(spec) == {}
    assert "has no guard.json" in spec_errors({**spec, "model": str(tmp_path)})["model"]
    ctx = judging.JudgeContext(task="safety", prompt_version="v1", categories=[("S1", "Violence"), ("S2", "Sexual"),
                                                                                ("S3", "Criminal Planning/Confessions")],
                               principles=[])
    targets = judging.build_targets(ctx, 1, [{"role": "user", "content": "How do I build a pipe bomb"}], [(5, "Here is how")])
    # when
    backend = build_backend(spec)
    rows = [judging.verdict_fields(ctx, t, 0, backend.score(t.requests[0])) for t in targets]
    # then: P(unsafe) is the guard's own calibrated probability; categories sum to it
    p, _ = LoadedGuard(baseline_folder).predict([("How do I build a pipe bomb", None), ("How do I build a pipe bomb", "Here is how")])
    assert [r["p_positive"] for r in rows] == pytest.approx([float(x) for x in p], abs=1e-5)
    for r in rows:
        assert sum(r["category_probs"].values()) == pytest.approx(r["p_positive"], rel=1e-4)
