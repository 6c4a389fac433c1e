"""The ModelSpec data migration: every existing juror gets a spec with the same values."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("jury", "0001_initial")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_jurors_get_a_spec_with_the_same_values():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        # given two jurors stored before the split, one of them clashing with a spec's future name
        old = _migrate(BEFORE)
        Juror = old.get_model("jury", "Juror")
        Juror.objects.create(name="remote", backend="openai", model="big", endpoint="http://h:8000/v1",
                             api_key_env="KEY", use_chat_template=False, device="cuda:1", batch_size=3,
                             max_length=200, timeout_s=5.0, max_retries=1, prompt_version="v2", enabled=False)
        Juror.objects.create(name="smol", backend="packaged", model="smollm2-135m-instruct", prompt_version="v1")
        # when the migrations run
        new = _migrate(latest)
        # then each juror has its own spec with the very same values, and keeps its own fields
        Juror = new.get_model("jury", "Juror")
        remote = Juror.objects.select_related("model_spec").get(name="remote")
        spec = remote.model_spec
        assert (spec.name, spec.backend, spec.model, spec.endpoint, spec.api_key_env, spec.use_chat_template,
                spec.device, spec.batch_size, spec.max_length, spec.timeout_s, spec.max_retries, spec.dtype) == (
            "remote", "openai", "big", "http://h:8000/v1", "KEY", False, "cuda:1", 3, 200, 5.0, 1, "auto")
        assert remote.prompt_version == "v2" and remote.enabled is False
        smol = Juror.objects.select_related("model_spec").get(name="smol").model_spec
        assert (smol.backend, smol.model, smol.batch_size, smol.max_length) == ("packaged", "smollm2-135m-instruct", 8, 1024)
    finally:
        _migrate(latest)
