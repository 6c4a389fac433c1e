"""Model specs and the backend registry, with the fake backend: no model weights are loaded."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from jury import services
from jury.backends import get_backend, judging_backend_kinds
from jury.backends.base import Backend
from jury.backends.registry import backend_choices, build_backend, register_backend, spec_errors
from jury.models import JuryChunk, JuryDecision, JuryRun, ModelSpec, Verdict
from tests.jury.conftest import FAKE, fake_juror


@pytest.fixture
def eager():
    from config.celery import app

    old = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


def test_the_fake_backend_is_deterministic_and_steerable():
    from jury import judging

    ctx = judging.JudgeContext(task="safety", prompt_version="v1", categories=[("S1", "Violence")], principles=[])
    (target,) = judging.build_targets(ctx, 1, "Hello?", [])
    requests = target.requests[0]
    first = build_backend(FAKE).score(requests)
    again = build_backend(dict(FAKE)).score(requests)
    assert [r.logprobs for r in first] == [r.logprobs for r in again]
    other = build_backend(dict(FAKE, model="other")).score(requests)
    assert [r.logprobs for r in other] != [r.logprobs for r in first]
    steered = build_backend(dict(FAKE, model="prefer:unsafe")).score(requests)
    assert steered[0].probs["unsafe"] > 0.5
    with pytest.raises(RuntimeError, match="asked to fail"):
        build_backend(dict(FAKE, model="fail")).score(requests)


def test_the_fake_backend_is_refused_outside_tests_and_debug(db, settings):
    settings.TESTING, settings.DEBUG = False, False
    assert "fake" not in dict(backend_choices())
    with pytest.raises(ValidationError, match="tests and DEBUG only"):
        services.model_spec_create(name="f", backend="fake", model="fake")
    settings.DEBUG = True
    assert services.model_spec_create(name="f", backend="fake", model="fake").backend == "fake"


def test_specs_are_validated_by_their_kind(db):
    assert spec_errors({"backend": "nope"}) == {"backend": spec_errors({"backend": "nope"})["backend"]}
    with pytest.raises(ValidationError) as err:
        services.model_spec_create(name="r", backend="openai", model="m")
    assert "endpoint" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        services.juror_create(name="p", backend="packaged", model="gpt-9")
    assert "model" in err.value.message_dict


def test_a_new_kind_registers_without_new_machinery(db):
    # given a kind registered the way a guard classifier or an editor would be
    register_backend("test-echo", "tests.jury.test_model_registry:EchoBackend", label="echo (test)", debug_only=True)
    spec = services.model_spec_create(name="echo", backend="test-echo", model="x", batch_size=2)
    # when a worker builds it from the spec's plain data
    backend = get_backend(spec.as_dict())
    # then the registry built the registered class, once per spec
    assert isinstance(backend, EchoBackend) and get_backend(spec.as_dict()) is backend
    assert "test-echo" in {k.name for k in judging_backend_kinds(include_debug=True)}


class EchoBackend(Backend):
    def encode(self, text: str) -> list:
        return list(text)

    def decode(self, units: list) -> str:
        return "".join(units)

    def score_contexts(self, items):
        return [{k: -float(len(v)) for k, v in labels.items()} for _, labels in items]


def test_jurors_share_a_spec_and_runs_keep_a_copy_of_it(db, project, items, fake_jury):
    spec = ModelSpec.objects.get(jurors__name="fake-a")
    second = services.juror_create(name="fake-b", model_spec=spec, prompt_version="v2")
    assert set(spec.jurors.values_list("name", flat=True)) == {"fake-a", "fake-b"}
    run = services.jury_run_start(project=project, jury=fake_jury, task="safety")
    (member,) = run.config["jurors"]
    assert member["spec"] == {"name": "fake-a", **spec.as_dict()} and "dtype" not in member["spec"]
    ModelSpec.objects.filter(pk=spec.pk).update(batch_size=1, dtype="float16")
    run.refresh_from_db()
    assert run.config["jurors"][0]["spec"]["batch_size"] == 4  # the run's copy is unchanged
    second.refresh_from_db()
    assert second.spec()["dtype"] == "float16"


def test_a_run_over_several_chunks_and_two_jurors_writes_everything_once(
    eager, django_capture_on_commit_callbacks, project, items
):
    # given two fake jurors with different weights and a chunk per item
    jury = services.jury_create(
        name="two", jurors=[(fake_juror("f1"), 1.0), (fake_juror("f2", model="prefer:B"), 2.0)], rule="weighted",
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = services.jury_run_start(project=project, jury=jury, task="preference", chunk_size=1)
    run.refresh_from_db()
    # then every chunk is done, every verdict exists once, one decision per item
    assert run.status == JuryRun.Status.DONE, run.errors
    assert run.chunk_count == 3 and run.chunks.filter(status=JuryChunk.Status.DONE).count() == 3
    keys = list(Verdict.objects.filter(run=run).values_list("juror_id", "target", "order"))
    assert len(keys) == len(set(keys)) == run.verdicts_expected == 2 * 3 * 2
    assert run.decisions_count == JuryDecision.objects.filter(run=run).count() == 3
    assert set(run.timings) == {"f1", "f2"} and run.timings["f2"]["verdicts"] == 6
    # and finalising again changes nothing
    JuryRun.objects.filter(pk=run.pk).update(status=JuryRun.Status.RUNNING)
    services.jury_run_finalize(run_id=run.pk)
    assert JuryDecision.objects.filter(run=run).count() == 3


def test_a_juror_that_cannot_judge_fails_the_chunk_and_the_run(eager, django_capture_on_commit_callbacks, project, items):
    jury = services.jury_create(name="broken", jurors=[(fake_juror("broken", model="fail"), 1.0)])
    with django_capture_on_commit_callbacks(execute=True):
        run = services.jury_run_start(project=project, jury=jury, task="safety")
    run.refresh_from_db()
    assert run.status == JuryRun.Status.FAILED
    assert run.errors[0]["juror"] == "broken" and "asked to fail" in run.errors[0]["error"]
    assert not JuryDecision.objects.filter(run=run).exists()
