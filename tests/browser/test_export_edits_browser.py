"""The export page in headless Chromium with the edit formats (issue 11): a researcher picks salt,
names the tokenizer, starts the export and sees it finish; screenshots at 1440 and 800 px."""
from __future__ import annotations

import pytest

from exports import services
from exports.models import Export
from tests.exports.conftest import make_item
from tests.exports.test_edit_formats import _edit, _review

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_researcher_exports_salt_from_the_page(chromium, live_server, project, researcher, annotator, tmp_path,
                                                settings, model_cache_dir):
    settings.EXPORT_DIR = tmp_path / "exports"
    # given: an accepted improve edit (model text with markup, which the page must never render)
    item, (good, bad) = make_item(project, "Say hi <b>bold</b>", ["Hello there!", "No."])
    _, review = _edit(bad, "Hello! <script>alert(1)</script>", "improve")
    _review(review, "accept", annotator)
    for width in (1440, 800):
        context = chromium.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        page.goto(live_server.url + "/login/")
        page.fill("input[name=username]", "rita_researcher")
        page.fill("input[name=password]", "pw-rita_researcher")
        with page.expect_navigation():
            page.click("form button[type=submit]")
        page.goto(f"{live_server.url}/projects/{project.slug}/exports/")
        page.select_option("select[name=format]", "salt")
        assert page.input_value("input[name=tokenizer]") == "smollm2-135m-instruct"
        assert "salt: whose token ids are aligned" in page.inner_text("main")
        page.screenshot(path=str(_shot(f"export-page-salt-{width}")), full_page=True)
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        export = Export.objects.order_by("-id").first()
        assert export is not None and export.format == "salt"
        services.export_run(export_id=export.pk)  # the worker's part
        page.wait_for_selector("#export-status .status-done", timeout=60_000)
        assert "README.md" in page.inner_text("#export-status")
        assert "<script>" not in page.content().split("<main", 1)[1].replace("<script src=", "")
        page.screenshot(path=str(_shot(f"export-salt-done-{width}")), full_page=True)
        assert errors == []
        context.close()


def _shot(name: str):
    from tests.browser.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
