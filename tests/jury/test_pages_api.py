"""Jury pages and API: who sees what (admin / researcher member / annotator member / outsider /
anonymous), the live progress partial, and escaping of model text."""
from __future__ import annotations

import subprocess
import sys

import pytest
from django.urls import reverse

from jury import services
from jury.models import JuryRun
from tests.jury.conftest import fake_juror, import_items

PERSONAS = ["admin", "researcher", "annotator", "outsider", "anonymous"]
ALLOWED = {"admin", "researcher"}


@pytest.fixture
def jury(db):
    juror = fake_juror("smol")  # the fake backend: these tests are about pages, not judgments
    return services.jury_create(name="panel", jurors=[(juror, 1.0)], rule="mean")


@pytest.fixture
def pending_run(project, jury, items, django_capture_on_commit_callbacks, researcher):
    with django_capture_on_commit_callbacks(execute=False):  # not sent to a worker
        return services.jury_run_start(project=project, jury=jury, task="safety", user=researcher)


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_shows_jury_pages_only_to_researchers_and_admins(persona, login, project, pending_run, items):
    client = login(persona)
    urls = [
        reverse("jury-runs", args=[project.slug]),
        reverse("jury-run", args=[project.slug, pending_run.pk]),
        reverse("jury-item", args=[project.slug, items[0].pk]),
    ]
    for url in urls:
        response = client.get(url)
        if persona == "anonymous":
            assert response.status_code == 302 and reverse("login") in response["Location"]
        elif persona in ALLOWED:
            assert response.status_code == 200, url
        else:
            assert response.status_code == 404, url  # annotators and outsiders must not learn it exists


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_serves_the_run_api_only_to_researchers_and_admins(persona, login, project, pending_run, items):
    client = login(persona)
    urls = [
        reverse("api-jury-runs", args=[project.slug]),
        reverse("api-jury-run", args=[project.slug, pending_run.pk]),
        reverse("api-jury-item-verdicts", args=[project.slug, items[0].pk]),
    ]
    for url in urls:
        code = client.get(url).status_code
        expected = 200 if persona in ALLOWED else (401 if persona == "anonymous" else 404)
        assert code == expected, (url, code)
    cancel = client.post(reverse("api-jury-run-cancel", args=[project.slug, pending_run.pk]))
    assert cancel.status_code == (200 if persona in ALLOWED else (401 if persona == "anonymous" else 404))
    pending_run.refresh_from_db()
    assert (pending_run.status == JuryRun.Status.CANCELLED) == (persona in ALLOWED)


def test_it_rejects_another_projects_run(login, project, other_project, jury, admin_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        other_run = services.jury_run_start(project=other_project, jury=jury, task="safety", user=admin_user)
    client = login("researcher")
    assert client.get(reverse("jury-run", args=[project.slug, other_run.pk])).status_code == 404
    assert client.get(reverse("api-jury-run", args=[project.slug, other_run.pk])).status_code == 404
    assert client.get(reverse("api-jury-run", args=[other_project.slug, other_run.pk])).status_code == 404


@pytest.mark.parametrize("persona", PERSONAS)
def test_jurors_and_juries_api(persona, login, jury, researcher):
    client = login(persona)
    listing = client.get(reverse("api-jury-jurors"))
    assert listing.status_code == {"admin": 200, "researcher": 200, "anonymous": 401}.get(persona, 403)
    created = client.post(
        reverse("api-jury-jurors"),
        {"name": f"remote-{persona}", "backend": "openai", "model": "big", "endpoint": "http://127.0.0.1:9/v1"},
        content_type="application/json",
    )
    assert created.status_code == (201 if persona == "admin" else 401 if persona == "anonymous" else 403)


def test_api_validates_jurors_and_juries(login, jury):
    client = login("admin")
    no_endpoint = client.post(reverse("api-jury-jurors"), {"name": "x", "backend": "openai", "model": "m"},
                              content_type="application/json")
    assert no_endpoint.status_code == 400 and "endpoint" in no_endpoint.json()
    bad_model = client.post(reverse("api-jury-jurors"), {"name": "y", "backend": "packaged", "model": "gpt-9"},
                            content_type="application/json")
    assert bad_model.status_code == 400 and "model" in bad_model.json()
    unknown = client.post(reverse("api-jury-juries"), {"name": "j", "members": [{"juror": "nobody"}]},
                          content_type="application/json")
    assert unknown.status_code == 400
    ok = client.post(reverse("api-jury-juries"), {"name": "j2", "rule": "unanimous", "members": [{"juror": "smol", "weight": 2}]},
                     content_type="application/json")
    assert ok.status_code == 201 and ok.json()["members"] == [{"juror": "smol", "weight": 2.0}]


def test_researcher_starts_a_run_from_the_page_and_watches_it(login, project, jury, items, django_capture_on_commit_callbacks):
    client = login("researcher")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("jury-runs", args=[project.slug]), {"jury": "panel", "task": "preference"})
    assert response.status_code == 302
    assert len(callbacks) == 1  # the dispatch, enqueued after commit
    run = JuryRun.objects.get(project=project)
    assert response["Location"] == reverse("jury-run", args=[project.slug, run.pk])
    page = client.get(response["Location"]).content.decode()
    assert 'id="run-progress"' in page and 'hx-trigger="every 2s"' in page
    assert '<meta http-equiv="refresh"' in page  # works without JavaScript
    partial = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<section id="run-progress"') and "<html" not in partial
    assert "0 / 6 verdicts" in partial


def test_the_page_shows_a_bad_request_as_an_error(login, other_project, admin_user, jury):
    client = login("admin")
    response = client.post(reverse("jury-runs", args=[other_project.slug]), {"jury": "panel", "task": "principles"})
    assert response.status_code == 400
    assert "no principle set" in response.content.decode()
    assert not JuryRun.objects.exists()


def test_item_page_shows_each_jurors_verdict_beside_human_labels_escaped(
    login, project, jury, tmp_path, django_capture_on_commit_callbacks
):
    from config.celery import app

    (item,) = import_items(project, [("<script>alert('p')</script> hi", ["<b>bold</b> answer", "<img src=x onerror=alert(1)>"])],
                           tmp_path, prefix="x")
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = services.jury_run_start(project=project, jury=jury, task="preference")
    finally:
        app.conf.task_always_eager = False
    run.refresh_from_db()
    assert run.status == JuryRun.Status.DONE
    client = login("researcher")
    page = client.get(reverse("jury-item", args=[project.slug, item.pk])).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "<img src=x" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    # both orders of the one pair, in response letters, never database ids or target keys
    assert page.count(f"<td>smol · run {run.pk}</td>") == 2
    assert "A vs B: P(A better)" in page and "shown A first" in page and "shown B first" in page
    assert "Safety labels" in page and "Preferences" in page
    response_ids = [r.pk for r in item.responses.all()]
    assert not any(f"#{rid}" in page or f":r{rid}" in page for rid in response_ids)
    api = client.get(reverse("api-jury-item-verdicts", args=[project.slug, item.pk])).json()
    assert {v["order"] for v in api["verdicts"]} == {0, 1}
    assert api["decisions"][0]["annotation"] is not None


def test_web_modules_do_not_import_torch():
    """The web process imports urls, views, api, admin and tasks (jury and guard); none may pull in torch."""
    code = (
        "import os, sys, django\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings_test')\n"
        "django.setup()\n"
        "import jury.urls, jury.views, jury.api, jury.api_urls, jury.admin, jury.tasks, jury.services, jury.selectors\n"
        "import jury.backends, jury.backends.openai, jury.backends.registry, jury.backends.fake, config.urls\n"
        "import exports.guard.models, exports.guard.services, exports.guard.selectors, exports.guard.tasks\n"
        "import exports.guard.sources, exports.guard.manifest, exports.guard.ml.config, exports.guard.ml.data\n"
        "import exports.guard.ml.calibrate, exports.guard.ml.evaluate, exports.guard.backend\n"
        "import exports.guard.views, exports.guard.api, exports.guard.urls, exports.guard.api_urls, exports.guard.forms\n"
        "import exports.guard.management.commands.train_guard, exports.guard.management.commands.eval_guard\n"
        "import exports.guard.loop, exports.guard.ml.reliability, exports.guard.ml.prompting\n"
        "import annotation.crosswalk, annotation.crosswalk_data, annotation.metrics.selectors, annotation.metrics.services\n"
        "from django.urls import reverse; reverse('jury-runs', args=['x']); reverse('guards', args=['x'])\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
