"""manage.py run_jury and load_default_jury."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from jury import services
from jury.models import Jury, JuryRun
from tests.jury.conftest import fake_juror


def test_load_default_jury_creates_the_two_packaged_jurors_once(db):
    out = StringIO()
    call_command("load_default_jury", stdout=out)
    call_command("load_default_jury", stdout=out)
    jury = Jury.objects.get(name="default")
    assert sorted(jury.jurors.values_list("model_spec__model", flat=True)) == ["gemma3-270m", "smollm2-135m-instruct"]
    assert "smollm2-135m (smollm2-135m-instruct)" in out.getvalue()


@pytest.mark.django_db(transaction=True)  # real commits, so the run is dispatched when the command commits
def test_run_jury_waits_for_the_run(project, items):
    from config.celery import app

    juror = fake_juror("fake-cli")
    services.jury_create(name="cli", jurors=[(juror, 1.0)])
    out = StringIO()
    app.conf.task_always_eager = True
    try:
        call_command("run_jury", "--project", project.slug, "--jury", "cli", "--task", "preference", "--wait",
                     "--timeout", "120", stdout=out)
    finally:
        app.conf.task_always_eager = False
    run = JuryRun.objects.get()
    assert run.status == JuryRun.Status.DONE
    assert f"run #{run.pk} done: 3 decisions" in out.getvalue()


def test_run_jury_names_what_is_wrong(project, db):
    with pytest.raises(CommandError, match="No jury 'nope'"):
        call_command("run_jury", "--project", project.slug, "--jury", "nope", "--task", "safety")
    with pytest.raises(CommandError, match="No project 'ghost'"):
        call_command("run_jury", "--project", "ghost", "--jury", "nope", "--task", "safety")
