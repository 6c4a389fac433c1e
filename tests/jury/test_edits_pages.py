"""Synthetic-edit pages, API and command (issue 11): who may see and start runs, escaping of
model text, the OpenAPI schema, ``manage.py synth_edits``."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from jury.edits import services as edit_services
from jury.edits.models import EditRun, EditTemplate
from tests.jury.conftest import import_items
from tests.jury.test_edits import fake_editor

PERSONAS = ["admin", "researcher", "annotator", "outsider", "anonymous"]
ALLOWED = {"admin", "researcher"}
NASTY = '<script>alert("x")</script> Mix bleach & ammonia'


@pytest.fixture
def edit_items(project, tmp_path):
    return import_items(project, [("Cleaning tips?", [NASTY, "Use vinegar and water for glass."])], tmp_path, "p")


@pytest.fixture
def done_run(project, edit_items, django_capture_on_commit_callbacks):
    run = edit_services.edit_run_start(project=project, editor=fake_editor(), direction="corrupt", enqueue=False,
                                       options={"max_ratio": 1.0, "max_extra_words": 3})
    assert edit_services.edit_run_process(run_id=run.pk) == "done"
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("persona", PERSONAS)
def test_pages_only_for_researchers_and_admins(persona, login, project, done_run):
    client = login(persona)
    for url in (reverse("edit-runs", args=[project.slug]), reverse("edit-run", args=[project.slug, done_run.pk]),
                reverse("api-edit-runs", args=[project.slug]), reverse("api-edit-run", args=[project.slug, done_run.pk]),
                reverse("api-edit-templates", args=[project.slug])):
        code = client.get(url).status_code
        if persona in ALLOWED:
            assert code == 200, url
        elif persona == "anonymous":
            assert code in (302, 401), url
        else:
            assert code == 404, url  # annotators and outsiders must not learn it exists


@pytest.mark.parametrize("persona", ["annotator", "outsider", "anonymous"])
def test_annotators_and_outsiders_cannot_start_runs_or_edit_templates(persona, login, project, edit_items):
    client = login(persona)
    editor = fake_editor()
    template = edit_services.default_template("corrupt")
    page = client.post(reverse("edit-runs", args=[project.slug]),
                       {"editor": editor.name, "direction": "corrupt", "max_extra_words": 5, "min_ratio": 0.01,
                        "max_ratio": 0.6, "batch_size": 2, "seed": 0})
    api = client.post(reverse("api-edit-runs", args=[project.slug]), {"editor": editor.name, "direction": "corrupt"},
                      content_type="application/json")
    tpl = client.post(reverse("edit-template-revise", args=[project.slug]), {"template": template.pk, "text": "{response}"})
    assert page.status_code in (302, 404) and api.status_code in (401, 404) and tpl.status_code in (302, 404)
    if persona != "anonymous":
        assert page.status_code == api.status_code == tpl.status_code == 404
    assert not EditRun.objects.exists() and EditTemplate.objects.filter(name=template.name).count() == 1


def test_a_researcher_starts_a_run_from_the_page_and_the_api(login, project, edit_items, django_capture_on_commit_callbacks):
    client = login("researcher")
    editor = fake_editor()
    with django_capture_on_commit_callbacks(execute=False):
        page = client.post(reverse("edit-runs", args=[project.slug]),
                           {"editor": editor.name, "direction": "corrupt", "instruction": "a wrong dose",
                            "max_extra_words": 4, "min_ratio": 0.01, "max_ratio": 0.8, "batch_size": 2, "seed": 3})
    run = EditRun.objects.get()
    assert page.status_code == 302 and page["Location"] == reverse("edit-run", args=[project.slug, run.pk])
    assert (run.direction, run.total, run.options["instruction"], run.options["seed"]) == ("corrupt", 2, "a wrong dose", 3)
    bad = client.post(reverse("edit-runs", args=[project.slug]),
                      {"editor": editor.name, "direction": "corrupt", "max_extra_words": 4, "min_ratio": 0.9,
                       "max_ratio": 0.1, "batch_size": 2, "seed": 0})
    assert bad.status_code == 400 and b"min_ratio &lt; max_ratio" in bad.content
    with django_capture_on_commit_callbacks(execute=False):
        api = client.post(reverse("api-edit-runs", args=[project.slug]),
                          {"editor": editor.name, "direction": "improve", "options": {"instruction": "Be safe.", "limit": 1}},
                          content_type="application/json")
    assert api.status_code == 201 and api.json()["total"] == 1 and api.json()["status"] == "pending"
    cancel = client.post(reverse("api-edit-run-cancel", args=[project.slug, api.json()["id"]]))
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    unknown = client.post(reverse("api-edit-runs", args=[project.slug]), {"editor": "nobody", "direction": "improve"},
                          content_type="application/json")
    assert unknown.status_code == 400


def test_a_researcher_edits_a_template_into_a_new_version(login, project):
    client = login("researcher")
    template = edit_services.default_template("improve")
    response = client.post(reverse("edit-template-revise", args=[project.slug]),
                           {"template": template.pk, "text": "Fix: {response}\nFeedback: {feedback}", "notes": "shorter"})
    assert response.status_code == 302
    newest = EditTemplate.objects.filter(name=template.name).order_by("-version").first()
    assert (newest.version, newest.notes) == (2, "shorter") and EditTemplate.objects.get(pk=template.pk).version == 1
    api = client.post(reverse("api-edit-templates", args=[project.slug]),
                      {"template": template.pk, "text": "{nope}"}, content_type="application/json")
    assert api.status_code == 400


def test_model_text_is_escaped_on_the_run_page(login, project, done_run):
    page = login("researcher").get(reverse("edit-run", args=[project.slug, done_run.pk])).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "kept" in page and reverse("edit-runs", args=[project.slug]) in page
    api = login("researcher").get(reverse("api-edit-run", args=[project.slug, done_run.pk])).json()
    assert {e["status"] for e in api["edits"]} == {"kept"} and api["edits"][0]["source_text"] == NASTY
    assert "response_ids" not in api["options"]
    htmx = login("researcher").get(reverse("edit-run", args=[project.slug, done_run.pk]), HTTP_HX_REQUEST="true")
    assert b'id="run-progress"' in htmx.content and b"<html" not in htmx.content


def test_project_page_links_the_edits_page(login, project):
    page = login("researcher").get(reverse("project", args=[project.slug])).content.decode()
    assert reverse("edit-runs", args=[project.slug]) in page
    assert reverse("edit-runs", args=[project.slug]) not in login("annotator").get(
        reverse("project", args=[project.slug])).content.decode()


def test_openapi_schema_lists_the_edit_endpoints(login):
    schema = login("researcher").get("/api/schema/").content.decode()
    for path in ("/api/projects/{slug}/edits/runs/", "/api/projects/{slug}/edits/runs/{id}/",
                 "/api/projects/{slug}/edits/templates/"):
        assert path in schema, path


def test_synth_edits_command_inline(project, edit_items, capsys):
    editor = fake_editor()
    call_command("synth_edits", "--project", project.slug, "--editor", editor.name, "--direction", "corrupt",
                 "--instruction", "a wrong dose", "--max-ratio", "1.0", "--inline")
    out = capsys.readouterr().out
    run = EditRun.objects.get()
    assert run.status == "done" and run.kept_count == 2 and f"run #{run.pk} done: 2 kept for review" in out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No model spec"):
        call_command("synth_edits", "--project", project.slug, "--editor", "nobody", "--direction", "improve")
