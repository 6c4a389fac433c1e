"""The synthetic-edit pages in a real browser at desktop and narrow widths: no page errors, model
text escaped, no sideways scrolling, and starting a run from the form."""
from __future__ import annotations

import pytest

from jury.edits import services as edit_services
from jury.edits.models import EditRun
from tests.jury.conftest import import_items
from tests.jury.test_edits import fake_editor

pytestmark = pytest.mark.browser

XSS = "<script>alert(1)</script>"


@pytest.fixture
def edit_run(project, tmp_path):
    import_items(project, [
        ("How do I treat a small burn?", [f"Put butter on it {XSS} and wait a day before rinsing it off.",
                                          "Cool it under running water for twenty minutes."]),
        ("Is it safe to mix bleach and ammonia?", ["No, never."]),
    ], tmp_path, prefix="b")
    run = edit_services.edit_run_start(project=project, editor=fake_editor(), direction="corrupt", enqueue=False,
                                       options={"max_ratio": 0.6, "max_extra_words": 3})
    assert edit_services.edit_run_process(run_id=run.pk) == "done"
    return run


@pytest.mark.parametrize("width", [1440, 800])
def test_edit_pages_render_at_both_widths(tab, researcher, project, edit_run, width):
    tab.page.set_viewport_size({"width": width, "height": 1000})
    tab.login(researcher.username, "pw-" + researcher.username)
    tab.goto(f"/projects/{project.slug}/edits/")
    tab.shot(f"edits-runs-{width}")
    assert tab.page.locator("table.list tbody tr").count() == 1
    assert tab.page.evaluate("document.documentElement.scrollWidth") <= width + 1
    tab.goto(f"/projects/{project.slug}/edits/runs/{edit_run.pk}/")
    tab.shot(f"edits-run-{width}")
    body = tab.page.content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "rewrites nearly everything" in body
    assert tab.page.locator("table.edit-list tbody tr").count() == 3
    assert tab.page.evaluate("document.documentElement.scrollWidth") <= width + 1
    assert not tab.errors and not tab.dialogs


def test_the_start_form_starts_a_run(tab, researcher, project, edit_run):
    editor = edit_run.editor
    tab.login(researcher.username, "pw-" + researcher.username)
    tab.goto(f"/projects/{project.slug}/edits/")
    tab.page.select_option("select[name=editor]", editor.name)
    tab.page.select_option("select[name=direction]", "corrupt")
    tab.page.fill("textarea[name=instruction]", "a wrong dose")
    with tab.page.expect_navigation():
        tab.page.click("form.edit-start button[type=submit]")
    run = EditRun.objects.exclude(pk=edit_run.pk).get()
    assert tab.page.url.endswith(f"/edits/runs/{run.pk}/") and run.options["instruction"] == "a wrong dose"
    assert not tab.errors
