"""The import pages in headless Chromium: upload, htmx polling of a background batch, offline docs,
and guidelines whose scripts must never run."""
from __future__ import annotations

import pytest

from annotation.importing import import_batch_run
from annotation.models import ImportBatch
from tests.annotation.web_fixtures import sample_records, write_jsonl

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_researcher_uploads_and_htmx_follows_a_background_import(tab, project, researcher, tmp_path, settings):
    # given: every upload runs in the background (no worker here: the test runs the batch itself)
    settings.IMPORT_BACKGROUND_THRESHOLD = 0
    path = write_jsonl(tmp_path / "items.jsonl", sample_records(4))
    tab.login("rita_researcher", "pw-rita_researcher")
    page = tab.page
    # when: the upload form is filled in and sent
    tab.goto(f"/projects/{project.slug}/import/")
    page.set_input_files("input[type=file]", str(path))
    page.select_option("select[name=format]", "tribunal")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    # then: the batch page shows it pending, with htmx 2 loaded from our static files
    batch = ImportBatch.objects.get()
    assert page.url.endswith(f"/projects/{project.slug}/imports/{batch.pk}/")
    assert "Pending" in page.inner_text("#batch-status")
    assert page.evaluate("window.htmx && window.htmx.version") == "2.0.11"
    # when: the worker finishes the batch
    import_batch_run(batch_id=batch.pk)
    # then: the polled region turns to Done by itself, with no navigation
    # a selector, not wait_for_function: the page's CSP forbids the eval that the latter needs
    page.wait_for_selector("#batch-status .status-done", timeout=30000)
    assert page.inner_text("#items-created") == "4"
    assert page.url.endswith(f"/imports/{batch.pk}/")
    assert tab.errors == [] and tab.dialogs == []
    tab.shot("import-batch-done")


def test_guidelines_scripts_never_run(tab, project, annotator):
    # given
    project.guidelines = (
        "# Rules\n\n<script>window.__xss=1;alert(1)</script>\n\n"
        "<img src=x onerror=\"window.__xss=1\"> [x](javascript:window.__xss=1)"
    )
    project.save(update_fields=["guidelines"])
    tab.login("bob_annotator", "pw-bob_annotator")
    # when
    tab.goto(f"/projects/{project.slug}/")
    tab.page.click(".guidelines a")  # the link lost its javascript: href; clicking does nothing
    # then
    assert tab.page.evaluate("window.__xss === undefined")
    assert tab.dialogs == [] and tab.errors == []
    assert tab.page.inner_text(".guidelines h3") == "Rules"  # under the page H1 and the "Guidelines" H2


def test_swagger_ui_renders_offline(tab, annotator):
    # given: every request to another origin is refused, as on a machine without internet
    tab.page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(tab.base_url) else route.continue_())
    tab.login("bob_annotator", "pw-bob_annotator")
    # when
    tab.goto("/api/docs/")
    # then: Swagger UI drew the operations from our schema
    tab.page.wait_for_selector("text=/api/projects/{slug}/items/", timeout=10000)
    assert tab.errors == []


@pytest.mark.parametrize("width", [1440, 800])
def test_a_pairwise_project_refuses_a_three_response_item_by_line(tab, project, researcher, tmp_path, width):
    # given: a pairwise project and a file whose second item has three responses
    project.mode = "pairwise"
    project.save(update_fields=["mode"])
    records = sample_records(2)
    records[1]["responses"] = ["one", "two", "three"]
    path = write_jsonl(tmp_path / "pairs.jsonl", records)
    tab.page.set_viewport_size({"width": width, "height": 900})
    tab.login("rita_researcher", "pw-rita_researcher")
    # when
    tab.goto(f"/projects/{project.slug}/import/")
    tab.page.set_input_files("input[type=file]", str(path))
    with tab.page.expect_navigation():
        tab.page.click("main form button[type=submit]")
    tab.shot(f"import-pairwise-refused-{width}")
    # then: the error names line 2 and says what to do; nothing stored
    body = tab.page.inner_text("main")
    assert "compares exactly two responses and this item has 3" in body and "2" in body
    assert ImportBatch.objects.get().items_created == 0 and not tab.errors
