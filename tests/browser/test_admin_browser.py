"""The admin's taxonomy editor and the styled error pages in a real browser: the category editor fits a
1,440 px window (it was 2,313 px wide), aliases are a comma list, publishing shows its diff first."""
from __future__ import annotations

import pytest

from annotation import services
from annotation.models import TaxonomyVersion

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1440, 800])
def test_category_editor_fits_and_publishing_confirms_with_a_diff(tab, admin_user, presets, width):
    # given: a draft of Aegis 2.0
    draft = services.taxonomy_version_new_draft(taxonomy=presets["taxonomies"]["aegis-2.0"].taxonomy)
    tab.page.set_viewport_size({"width": width, "height": 1000})
    tab.login(admin_user.username, "pw-" + admin_user.username)
    # when: the draft's editor opens
    tab.goto(f"/admin/annotation/taxonomyversion/{draft.pk}/change/")
    tab.shot(f"admin-category-editor-{width}")
    boxes = tab.page.locator("input[name$='-aliases']")
    with_aliases = tab.page.evaluate("[...document.querySelectorAll(\"input[name$='-aliases']\")].findIndex(e => e.value)")
    assert with_aliases >= 0, "no category of the Aegis draft shows its aliases"
    box = boxes.nth(with_aliases)
    box.scroll_into_view_if_needed()
    tab.page.screenshot(path=str(tab.shot(f"admin-category-editor-{width}-alias")), full_page=False)
    # then: nothing off screen, and the aliases box holds text, not JSON
    assert tab.page.evaluate("document.documentElement.scrollWidth") <= width + 1
    aliases = box.input_value()
    assert aliases and not aliases.startswith("[")
    # when: an alias is added and the version saved, then published from the list
    box.fill(aliases + ", typed in the browser")
    with tab.page.expect_navigation():
        tab.page.click("input[name=_continue]")
    tab.goto("/admin/annotation/taxonomyversion/")
    tab.page.check(f"input[name=_selected_action][value='{draft.pk}']")
    tab.page.select_option("select[name=action]", "action_publish")
    with tab.page.expect_navigation():
        tab.page.click("button[name=index]")
    # then: a confirmation page showing the change, and the draft still a draft
    tab.shot(f"admin-publish-confirm-{width}")
    body = tab.page.content()
    assert "Publish taxonomy versions?" in body and "typed in the browser" in body
    assert TaxonomyVersion.objects.get(pk=draft.pk).status == "draft"
    with tab.page.expect_navigation():
        tab.page.click("input[value='Yes, publish']")
    assert TaxonomyVersion.objects.get(pk=draft.pk).status == "published"
    assert "published" in tab.page.content() and not tab.errors


@pytest.mark.parametrize("width", [1440, 800])
def test_not_found_page_is_styled_with_navigation(tab, annotator, width):
    tab.page.set_viewport_size({"width": width, "height": 700})
    tab.login(annotator.username, "pw-" + annotator.username)
    response = tab.goto("/projects/no-such-project/")
    tab.shot(f"error-404-{width}")
    assert response.status == 404
    with tab.page.expect_navigation():
        tab.page.click("text=Back to your projects")
    assert tab.page.url.rstrip("/") == tab.base_url.rstrip("/") or "/projects" in tab.page.url
