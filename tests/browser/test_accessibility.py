"""axe-core (vendored: tests/browser/vendor/axe-4.10.3.min.js, from the npm package axe-core@4.10.3,
MPL-2.0) on every page a person uses, as the annotator, the researcher and the admin see it: no
serious or critical WCAG 2 A/AA violation (issue 13, point 19).

The pages' CSP forbids injected scripts, so only this test's browser context bypasses it to load axe;
the pages themselves are served exactly as in production."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser.conftest import Page

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-4.10.3.min.js"
SERIOUS = {"serious", "critical"}


@pytest.fixture
def axe_tab(chromium, live_server):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield Page(page, live_server.url)
    context.close()


def axe_violations(tab: Page) -> list[dict]:
    tab.page.add_script_tag(path=str(AXE))
    result = tab.page.evaluate(
        "async () => { const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }"
    )
    return [v for v in result if v["impact"] in SERIOUS]


@pytest.fixture
def busy_project(project, researcher, annotator, tmp_path):
    """The demo project with items, a submitted judgment, a flag and a fake jury run."""
    from annotation.workbench import services as wb
    from tests.annotation.web_fixtures import add_human_annotation, import_records, sample_records

    import_records(project, tmp_path, sample_records(4), user=researcher)
    lease = wb.queue_next(project=project, annotator=annotator)
    add_human_annotation(item=lease.item, annotator=researcher)
    return project


def _pages(project, item_id: int) -> dict[str, list[str]]:
    slug = project.slug
    return {
        "annotator": ["/", f"/projects/{slug}/", f"/annotate/{slug}/"],
        "researcher": [
            f"/projects/{slug}/", f"/projects/{slug}/members/", f"/annotate/{slug}/flags/",
            f"/annotate/{slug}/adjudicate/", f"/annotate/{slug}/adjudicate/{item_id}/", f"/projects/{slug}/jury/",
            f"/projects/{slug}/jury/items/{item_id}/", f"/projects/{slug}/exports/", f"/projects/{slug}/guards/",
            f"/projects/{slug}/metrics/", f"/projects/{slug}/import/", "/projects/new/", "/no-such-page/",
        ],
    }


def test_no_serious_or_critical_axe_violations(axe_tab, busy_project, researcher, annotator):
    item_id = busy_project.items.order_by("pk").first().pk
    found: dict[str, list[dict]] = {}
    axe_tab.goto("/login/")
    found["/login/"] = axe_violations(axe_tab)
    for persona, paths in _pages(busy_project, item_id).items():
        user = annotator if persona == "annotator" else researcher
        axe_tab.login(user.username, "pw-" + user.username)
        for path in paths:
            axe_tab.goto(path)
            violations = axe_violations(axe_tab)
            if violations:
                found[f"{persona} {path}"] = violations
    assert not {k: v for k, v in found.items() if v}, json.dumps(found, indent=1)


def test_the_axe_check_can_fail(axe_tab, annotator):
    """The check above is real: the same call reports a missing alt text (critical) and an unlabelled
    input (critical) put into a page."""
    axe_tab.login(annotator.username, "pw-" + annotator.username)
    axe_tab.goto("/")
    axe_tab.page.evaluate(
        "() => { const m = document.querySelector('main'); m.insertAdjacentHTML('beforeend',"
        " '<img src=\"/static/none.png\"><input type=\"text\">'); }"
    )
    ids = {v["id"] for v in axe_violations(axe_tab)}
    assert {"image-alt", "label"} <= ids


@pytest.mark.parametrize("width", [1440, 800])
def test_the_first_tab_offers_a_skip_link_that_lands_in_main(tab, annotator, project, width):
    tab.page.set_viewport_size({"width": width, "height": 700})
    tab.login(annotator.username, "pw-" + annotator.username)
    tab.goto(f"/projects/{project.slug}/")
    tab.page.keyboard.press("Tab")
    focused = tab.page.evaluate("document.activeElement.className + '|' + document.activeElement.textContent")
    assert focused == "skip-link|Skip to content"
    tab.shot(f"skip-link-{width}")
    tab.page.keyboard.press("Enter")
    assert tab.page.evaluate("document.activeElement.id") == "main"
    # and the focus ring is visible on a focused control (not the browser default "none")
    tab.page.keyboard.press("Tab")
    outline = tab.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
