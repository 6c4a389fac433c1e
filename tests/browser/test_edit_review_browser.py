"""Edit review in headless Chromium (issue 11): three edits reviewed with the keyboard (accept,
reject, fix), an undo, the key presses counted, screenshots at 1440 and 800 px, and the
adjudication page of a reviewed edit."""
from __future__ import annotations

import pytest

from annotation import services
from annotation.models import Annotation, Response
from tests.annotation.edit_review_fixtures import make_review_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_review(tab, item_id: int) -> None:
    tab.page.wait_for_selector(f"#task[data-kind=edit_review] input[name=item][value='{item_id}']", state="attached")
    tab.page.wait_for_selector("html[data-review-ready]")


def shots(tab, name: str) -> None:
    for width in (1440, 800):
        tab.page.set_viewport_size({"width": width, "height": 1000})
        tab.shot(f"{name}-{width}")
    tab.page.set_viewport_size({"width": 1440, "height": 1000})


def test_three_edits_reviewed_with_the_keyboard(tab, project, annotator, researcher, tmp_path):
    # given: three edits under review, ahead of the judge items in the queue
    reviews = make_review_items(project, tmp_path, n=3)
    for item in reviews:
        services.item_priority_raise(item=item, priority=5, reason="edit review first", source="test")
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.goto(f"/annotate/{project.slug}/")
    page = tab.page
    wait_review(tab, reviews[0].pk)
    assert page.locator("[data-testid=diff] ins").count() >= 1 and page.locator("[data-testid=diff] del").count() >= 1
    assert page.locator("[data-fix]").is_hidden()  # the fix box opens with "f" only
    shots(tab, "edit-review-fresh")
    keys: list[str] = []

    def press(key: str) -> None:
        keys.append(key)
        page.keyboard.press(key)

    # accept the first edit: two keys
    press("a")
    press("Enter")
    wait_review(tab, reviews[1].pk)
    from annotation.workbench.selectors import item_place

    assert f"{item_place(reviews[0])} saved" in page.inner_text("[data-testid=flash]")  # by place, never by id
    # undo it (one key), then answer it again
    press("z")
    wait_review(tab, reviews[0].pk)
    assert "withdrawn" in page.inner_text("[data-testid=flash]")
    press("a")
    press("Enter")
    wait_review(tab, reviews[1].pk)
    # reject the second: two keys
    press("r")
    press("Enter")
    wait_review(tab, reviews[2].pk)
    # the third edit's markup is text, not elements
    assert page.locator("[data-testid=diff] b").count() == 0
    assert "<b>more</b>" in page.inner_text("[data-testid=diff]")
    # fix the third: "f" opens the box with the edit, the cursor at its end; Ctrl+Enter submits
    press("f")
    assert page.locator("#edit_fix").is_visible()
    assert page.evaluate("document.activeElement.id") == "edit_fix"
    page.keyboard.type(" Stop if it gets worse.")
    shots(tab, "edit-review-fix")
    press("Control+Enter")
    page.wait_for_selector("#judgment")  # the judge items come next (lower priority)
    assert f"{item_place(reviews[2])} saved" in page.inner_text("[data-testid=flash]")
    # then: three verdicts stored, once each; the undone accept kept on record
    assert keys == ["a", "Enter", "z", "a", "Enter", "r", "Enter", "f", "Control+Enter"]
    current = {a.item_id: a for a in Annotation.objects.filter(annotator=annotator).current()
               if a.item_id in {r.pk for r in reviews}}
    assert [current[r.pk].edit_verdict for r in reviews] == ["accept", "reject", "fix"]
    fix = current[reviews[2].pk].edit_fix
    assert fix.origin == Response.Origin.HUMAN_EDITED and fix.parent_id == reviews[2].review_of_id
    assert fix.text == reviews[2].review_of.text + " Stop if it gets worse."
    assert Annotation.objects.filter(item=reviews[0], retracted=True).count() == 1
    assert not tab.errors and not tab.dialogs
    assert page.evaluate("window.__xss") is None

    # the researcher sees the verdicts per rater on the adjudication page
    tab.login("rita_researcher", "pw-rita_researcher")
    tab.goto(f"/annotate/{project.slug}/adjudicate/{reviews[2].pk}/")
    assert "bob_annotator" in page.inner_text("[data-testid=records]")
    assert "fix" in page.inner_text("[data-testid=outcome]")
    shots(tab, "edit-review-adjudication")
    page.locator("input[name=edit_verdict][value=reject]").check()
    with page.expect_navigation():
        page.locator("[data-testid=decision] button[type=submit]").click()
    assert "reject" in page.inner_text("[data-testid=outcome]")
    assert not tab.errors and not tab.dialogs


def test_metrics_page_shows_edit_review_agreement(tab, project, annotator, tmp_path):
    from tests.annotation.edit_review_fixtures import review_by_plan
    from tests.annotation.workbench_fixtures import make_annotators

    project.overlap = 3
    project.save(update_fields=["overlap"])
    items = make_review_items(project, tmp_path, n=3)
    review_by_plan(project, items, [annotator, *make_annotators(project, 2)],
                   {0: ["accept", "accept", "reject"], 1: ["reject", "fix", None], 2: ["fix", "fix", "accept"]})
    from django.core.cache import cache

    cache.clear()  # the metrics are cached by project id and newest annotation id, which another test may share
    tab.login("rita_researcher", "pw-rita_researcher")
    tab.goto(f"/projects/{project.slug}/metrics/?bootstrap=50")
    section = tab.page.locator("[data-testid=edit-review]")
    assert "Accept/reject agreement: 3 reviewed edits, 8 verdicts" in section.inner_text()
    section.scroll_into_view_if_needed()
    for width in (1440, 800):
        tab.page.set_viewport_size({"width": width, "height": 1000})
        tab.page.locator("[data-testid=edit-review]").screenshot(path=str(tab.shot(f"edit-review-metrics-page-{width}")
                                                                          .with_name(f"edit-review-metrics-{width}.png")))
    assert not tab.errors
