"""The workbench in headless Chromium: keyboard ranking, pairwise, adjudication, XSS payloads."""
from __future__ import annotations

import pytest

from annotation.models import Annotation, Assignment, Project
from annotation.workbench import services as wb
from tests.annotation.workbench_fixtures import full_judgment, make_annotators, make_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS_PROMPT = "Tell me <script>window.__xss=1;alert('prompt')</script> now"
XSS_RESPONSES = [
    "<img src=x onerror=\"window.__xss=1;alert('img')\">",
    "[click me](javascript:window.__xss=1) and <a href=\"javascript:window.__xss=1\">here</a>",
    "<svg onload=\"window.__xss=1\"></svg> ![x](javascript:window.__xss=1) <iframe src=\"javascript:alert(1)\"></iframe>",
]


def ready(tab) -> None:
    tab.page.wait_for_selector("html[data-workbench-ready='1']")


def test_annotator_ranks_with_the_keyboard_tags_and_gets_the_next_item(tab, project, annotator, tmp_path):
    # given: a ranking + safety project with two items of three responses
    make_items(project, tmp_path, 2, responses=3)
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.goto(f"/annotate/{project.slug}/")
    ready(tab)
    page = tab.page
    first_item = Assignment.objects.get(annotator=annotator, status="active").item_id
    tab.shot("workbench-ranking-fresh")
    # when: rank with the keys: 1 for the first card, 2 for the second, "=" ties the third with it
    page.locator("#responses > .response-card").first.focus()
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("=")
    cards = page.locator("#responses > .response-card")
    ranks = [cards.nth(i).locator("select[data-rank]").input_value() for i in range(3)]
    assert ranks == ["1", "2", "2"]
    assert "tied" in (cards.nth(2).get_attribute("class") or "")
    # the top response is unsafe with two categories
    top = cards.nth(0)
    top.focus()
    page.keyboard.press("u")
    top.locator("input[type=checkbox][value=S1]").check()
    top.locator("input[type=checkbox][value=S3]").check()
    page.locator("label.principle input").first.check()
    page.fill("#rationale", "the first one is unsafe but most complete")
    top.focus()  # "?" typed into the rationale is text, not a shortcut
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    tab.shot("workbench-shortcuts")
    page.keyboard.press("Escape")
    tab.shot("workbench-ranking-filled")
    page.locator("#rationale").focus()
    page.keyboard.press("Control+Enter")
    # then: a confirmation and the next item, without a full page load
    page.wait_for_selector("[data-testid=flash]")
    assert f"Item {first_item} saved" in page.inner_text("[data-testid=flash]")
    ready(tab)
    tab.shot("workbench-ranking-next")
    ann = Annotation.objects.get(annotator=annotator)
    order = [int(cards.nth(i).get_attribute("data-response")) for i in range(3)]
    assert ann.item_id == first_item
    assert len(ann.ranking) == 2 and len(ann.ranking[1]) == 2
    unsafe = ann.response_safety.get(label="unsafe")
    assert unsafe.categories == ["S1", "S3"]
    assert ann.principles.count() == 1 and ann.rationale.startswith("the first one")
    assert ann.duration_ms is not None and ann.shown_order
    nxt = Assignment.objects.get(annotator=annotator, status="active")
    assert nxt.item_id != first_item and str(nxt.item_id) in page.inner_text("#task h2")
    assert order  # the next item's cards are on the page
    assert not tab.errors and not tab.dialogs


def test_pairwise_flow(tab, project, annotator, tmp_path):
    Project.objects.filter(pk=project.pk).update(mode="pairwise")
    make_items(project, tmp_path, 2, responses=2)
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.goto(f"/annotate/{project.slug}/")
    ready(tab)
    page = tab.page
    a = Assignment.objects.get(annotator=annotator, status="active")
    page.keyboard.press("b")
    page.keyboard.press("3")
    assert page.locator("input[name=pair_choice][value=b]").is_checked()
    assert page.locator("input[name=pair_strength][value='3']").is_checked()
    tab.shot("workbench-pairwise")
    page.click("[data-testid=submit]")
    page.wait_for_selector("[data-testid=flash]")
    ann = Annotation.objects.get(annotator=annotator)
    assert (ann.pair_a_id, ann.pair_b_id, ann.pair_choice, ann.pair_strength) == (*a.shown_order[:2], "b", 3)
    # undo brings the item back; it is not deleted
    page.click("[data-testid=undo]")
    page.wait_for_selector("text=was withdrawn")
    assert Annotation.objects.filter(annotator=annotator, retracted=True, supersedes=ann).exists()
    tab.shot("workbench-pairwise-undone")
    assert not tab.errors and not tab.dialogs


def test_adjudication_flow(tab, project, researcher, tmp_path):
    (item,) = make_items(project, tmp_path, 1, responses=3)
    users = make_annotators(project, 2)
    for i, u in enumerate(users):
        a = wb.queue_next(project=project, annotator=u)
        order = a.shown_order if i == 0 else a.shown_order[::-1]
        wb.annotation_submit(project=project, annotator=u, item_id=a.item_id,
                             judgment=full_judgment(project, order, rationale=f"rationale of {u.username} <b>x</b>"))
    tab.login("rita_researcher", "pw-rita_researcher")
    tab.goto(f"/annotate/{project.slug}/adjudicate/")
    page = tab.page
    tab.shot("adjudication-list")
    page.click(f"text=Item {item.pk}")
    page.wait_for_selector("[data-testid=records]")
    assert "rationale of ann0 <b>x</b>" in page.inner_text("[data-testid=records]")
    tab.shot("adjudication-item")
    responses = list(item.responses.order_by("position").values_list("pk", flat=True))
    for rank, rid in enumerate(responses, start=1):
        page.select_option(f"select[name=rank-{rid}]", str(rank))
        page.check(f"input[name=label-{rid}][value=safe]")
    page.fill("#rationale", "final: source order")
    with page.expect_navigation():
        page.click("[data-testid=record-decision]")
    assert "Decision recorded" in page.content()
    decision = Annotation.objects.get(source="adjudication")
    assert decision.ranking == [[r] for r in responses] and decision.annotator == researcher
    tab.shot("adjudication-decided")
    assert not tab.errors and not tab.dialogs


def test_xss_payloads_do_not_execute(tab, project, annotator, researcher, tmp_path):
    # given: payloads in the prompt, the responses, the guidelines and a rationale
    Project.objects.filter(pk=project.pk).update(
        guidelines="Read this: " + XSS_RESPONSES[1] + "\n\n" + XSS_PROMPT + "\n\n" + XSS_RESPONSES[0]
    )
    project.refresh_from_db()
    make_items(project, tmp_path, 1, prompt=XSS_PROMPT, texts=XSS_RESPONSES)
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.goto(f"/annotate/{project.slug}/")
    ready(tab)
    page = tab.page
    # when: everything is on screen and every link is clicked
    for link in page.locator("main a[href^='javascript']").all():
        link.click()
    page.wait_for_timeout(300)
    # then: the payloads show as text and nothing ran
    assert "<script>window.__xss=1" in page.inner_text(".wb-prompt")
    assert "onerror" in page.inner_text("#responses")
    assert page.locator("main script, main img, main svg, main iframe").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    tab.shot("xss-workbench")
    # the researcher's adjudication page shows the same text and the annotator's rationale
    a = Assignment.objects.get(annotator=annotator, status="active")
    wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id,
                         judgment=full_judgment(project, a.shown_order, rationale=XSS_RESPONSES[0]))
    tab.login("rita_researcher", "pw-rita_researcher")
    tab.goto(f"/annotate/{project.slug}/adjudicate/{a.item_id}/")
    page.wait_for_selector("[data-testid=records]")
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("main img, main svg, main iframe").count() == 0
    tab.shot("xss-adjudication")
    assert tab.dialogs == [], tab.dialogs
