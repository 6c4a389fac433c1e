"""The workbench in headless Chromium: keyboard ranking, pairwise, adjudication, XSS payloads."""
from __future__ import annotations

from datetime import timedelta

import pytest

from annotation.models import Annotation, Assignment, Project
from annotation.workbench import services as wb
from annotation.workbench.selectors import item_place_by_id
from tests.annotation.workbench_fixtures import full_judgment, make_annotators, make_items
from tests.browser.conftest import Page as Tab

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
    # nothing is pre-selected: the other two are labelled safe with the keys
    for i in (1, 2):
        cards.nth(i).focus()
        page.keyboard.press("s")
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
    assert f"{item_place_by_id(project, first_item)} saved" in page.inner_text("[data-testid=flash]")
    ready(tab)
    # the swapped-in item's lease time is local too (localtime.js runs on htmx swaps as well)
    page.wait_for_selector(".wb-actions time[data-localised='1']")
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
    assert nxt.item_id != first_item and str(item_place_by_id(project, nxt.item_id)) in page.inner_text("#task h2")
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
    page.click(f"text={item_place_by_id(project, item.pk)}")
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


# --- Issue 13: keyboard, errors, defaults, rules (points 1, 2, 4, 7, 11, 12) ---------------------------


class Keys:
    """The tab's keyboard, counting what an annotator presses. Typed text (a rationale, a filter
    query) counts one press per character; the rationale's words are typed too but counted as one
    entry, as the walkthrough's 131 did (its 20 non-Tab presses held no prose)."""

    def __init__(self, page) -> None:
        self.page = page
        self.count = 0

    def press(self, *keys: str) -> None:
        for key in keys:
            self.page.keyboard.press(key)
            self.count += 1

    def type(self, text: str) -> None:  # a filter query: every character is a key press
        self.page.keyboard.type(text)
        self.count += len(text)

    def prose(self, text: str) -> None:
        self.page.keyboard.type(text)
        self.count += 1


def shots(tab, name: str) -> None:
    """The page at 1440 and 800 px wide (restores the test's viewport)."""
    page = tab.page
    before = page.viewport_size
    for width in (1440, 800):
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_timeout(100)
        tab.shot(f"{name}-{width}")
    page.set_viewport_size(before)


def active_id(page) -> str:
    return page.evaluate("document.activeElement && (document.activeElement.id || document.activeElement.name || '')")


def test_a_safety_item_takes_at_most_25_key_presses(tab, project, annotator, tmp_path):
    # given: a safety project, an item with two responses (issue 13 point 1: it took 131 presses)
    Project.objects.filter(pk=project.pk).update(mode=Project.Mode.SAFETY)
    make_items(project, tmp_path, 2, responses=2)
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.goto(f"/annotate/{project.slug}/")
    ready(tab)
    page = tab.page
    keys = Keys(page)
    a = Assignment.objects.get(annotator=annotator, status="active")
    first, second = a.shown_order
    # when: response A unsafe with Violence and Criminal planning, picked by typing their codes
    keys.press("u")
    assert page.evaluate("document.activeElement.matches('[data-picker-filter]')")
    keys.type("s1")
    # the picker shows only what matches (S1, S10-S19), and never the label-like S13 "Needs Caution"
    picker = page.locator("#response-A [data-picker]")
    assert picker.locator("li:visible").count() == 10
    assert picker.locator("input[value=S13]").count() == 0
    shots(tab, "wb13-keys-picker")
    keys.press("Enter")
    keys.type("s3")
    keys.press("Enter", "Escape")
    assert active_id(page) == "response-A"
    # response B unsafe with Hate
    keys.press("j", "u")
    keys.type("s8")
    keys.press("Enter", "Escape")
    # the prompt unsafe with Criminal planning
    keys.press("Shift+U")
    keys.type("s3")
    keys.press("Enter", "Escape")
    # a rationale, a confidence, submit
    keys.press("r")
    keys.prose("A helps with violence and crime; B demeans a group.")
    keys.press("Escape", "Shift+4")
    shots(tab, "wb13-keys-filled")
    keys.press("Control+Enter")
    page.wait_for_selector("[data-testid=flash]")
    # then: all of it was stored, within the target
    ann = Annotation.objects.get(annotator=annotator)
    labels = {rs.response_id: (rs.label, rs.categories) for rs in ann.response_safety.all()}
    assert labels == {first: ("unsafe", ["S1", "S3"]), second: ("unsafe", ["S8"])}
    assert (ann.prompt_label, ann.prompt_categories) == ("unsafe", ["S3"])
    assert ann.rationale.startswith("A helps") and ann.confidence == 4
    assert keys.count <= 25, keys.count
    assert not tab.errors and not tab.dialogs


def test_principles_skip_flag_and_undo_have_keys(tab, project, annotator, tmp_path):
    Project.objects.filter(pk=project.pk).update(mode=Project.Mode.PAIRWISE)
    make_items(project, tmp_path, 3, responses=2)
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.goto(f"/annotate/{project.slug}/")
    ready(tab)
    page = tab.page
    # principles: P filters them, Enter ticks the first match
    honest = project.principle_set.principles.order_by("order", "code")[3]
    page.keyboard.press("p")
    page.keyboard.type(honest.short.lower()[:6])
    assert page.locator("label.principle:visible").count() < project.principle_set.principles.count()
    shots(tab, "wb13-principles-filter")
    page.keyboard.press("Enter")
    assert page.locator(f"input[name=principle][value='{honest.pk}']").is_checked()
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    page.keyboard.press("2")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-testid=flash]")
    assert list(Annotation.objects.get(annotator=annotator).principles.values_list("pk", flat=True)) == [honest.pk]
    # Z undoes it (the same item comes back)
    page.keyboard.press("z")
    page.wait_for_selector("text=was withdrawn")
    # X: the reason with the arrows, Enter skips
    ready(tab)
    current = Assignment.objects.get(annotator=annotator, status="active").item_id
    page.keyboard.press("x")
    page.keyboard.press("ArrowDown")  # "Language I cannot judge"
    page.keyboard.press("Enter")
    page.wait_for_selector("text=skipped")
    assert Assignment.objects.get(annotator=annotator, item_id=current).reason == "language"
    # F flags
    ready(tab)
    current = Assignment.objects.get(annotator=annotator, status="active").item_id
    page.keyboard.press("f")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=flagged")
    assert Assignment.objects.get(annotator=annotator, item_id=current).status == "flagged"
    page.keyboard.press("?")
    overlay = page.inner_text("#shortcuts")
    for words in ("category picker", "the prompt is safe", "filter the principles", "rationale", "confidence",
                  "skip", "flag", "undo"):
        assert words in overlay, words
    shots(tab, "wb13-shortcuts")
    assert not tab.errors and not tab.dialogs


def test_errors_are_in_the_banner_by_letter_and_the_first_is_focused(tab, project, annotator, tmp_path):
    # given: a ranking + safety item of three responses, one ranked and one labelled unsafe alone
    make_items(project, tmp_path, 1, responses=3)
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.goto(f"/annotate/{project.slug}/")
    ready(tab)
    page = tab.page
    a = Assignment.objects.get(annotator=annotator, status="active")
    page.keyboard.press("1")  # A gets rank 1, focus moves to B
    page.keyboard.press("u")  # B unsafe, no category
    page.keyboard.press("Escape")
    page.fill("#rationale", "typed before the error")
    page.keyboard.press("Control+Enter")
    # then: every error in the banner, by letter, the first one focused and the cards outlined
    page.wait_for_selector("[data-testid=errors]")
    ready(tab)
    banner = page.inner_text("[data-testid=errors]")
    assert "Responses B and C have no rank; rank every response." in banner
    assert "Response B: Unsafe needs at least one category." in banner
    assert "Response A: Label this response" in banner and "Response C: Label this response" in banner
    assert not any(str(rid) in banner for rid in a.shown_order)
    page.wait_for_function("document.activeElement && document.activeElement.id === 'response-B'")
    assert page.locator(".response-card.has-error").count() == 3
    assert page.input_value("#rationale") == "typed before the error"
    shots(tab, "wb13-errors")
    # a banner link takes focus to what it names
    page.click("[data-testid=errors] a[href='#response-A']")
    assert active_id(page) == "response-A"
    assert not Annotation.objects.exists()
    assert not tab.errors and not tab.dialogs


def test_nothing_is_preselected_and_a_drag_ranks_only_the_dragged_card(tab, project, annotator, tmp_path):
    make_items(project, tmp_path, 1, responses=3)
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.goto(f"/annotate/{project.slug}/")
    ready(tab)
    page = tab.page
    # nothing pre-selected
    assert page.locator("#judgment input[type=radio]:checked").count() == 0
    assert [page.locator("select[data-rank]").nth(i).input_value() for i in range(3)] == ["", "", ""]
    # the confidence scale's ends are labelled
    assert page.inner_text("[data-testid=confidence-low]") == "a guess"
    assert page.inner_text("[data-testid=confidence-high]") == "certain"
    shots(tab, "wb13-fresh")
    # when: C is dragged above A
    cards = page.locator("#responses > .response-card")
    c_card = page.locator("#response-C")
    c_card.locator("header h3").drag_to(page.locator("#response-A header h3"), target_position={"x": 5, "y": 2})
    # then: C has rank 1 and A and B, never read, stay unranked
    ranks = {page.locator(f"#response-{x} select[data-rank]").input_value() for x in "AB"}
    assert page.locator("#response-C select[data-rank]").input_value() == "1"
    assert ranks == {""}
    assert cards.first.get_attribute("id") == "response-C"
    # a ranked card keeps its place when another is dragged above it: A gets 1, C moves to 2
    page.locator("#response-A").focus()
    page.locator("#response-A header h3").drag_to(page.locator("#response-C header h3"), target_position={"x": 5, "y": 2})
    assert page.locator("#response-A select[data-rank]").input_value() == "1"
    assert page.locator("#response-C select[data-rank]").input_value() == "2"
    assert page.locator("#response-B select[data-rank]").input_value() == ""
    shots(tab, "wb13-dragged")
    assert not tab.errors and not tab.dialogs


def test_the_picker_offers_only_what_the_rule_allows(tab, project, annotator, tmp_path):
    Project.objects.filter(pk=project.pk).update(mode=Project.Mode.SAFETY)
    make_items(project, tmp_path, 1, responses=2)
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.goto(f"/annotate/{project.slug}/")
    ready(tab)
    page = tab.page
    a_picker = page.locator("#response-A [data-picker]")
    # no label yet: the categories are off
    assert a_picker.locator("input[type=checkbox]:enabled").count() == 0
    # "needs caution" is a label alone: still off, and "/" opens nothing
    page.keyboard.press("c")
    page.keyboard.press("/")
    assert not page.evaluate("document.activeElement.matches('[data-picker-filter]')")
    assert a_picker.locator("input[type=checkbox]:enabled").count() == 0
    assert "choose unsafe to pick" in page.evaluate(
        "getComputedStyle(document.querySelector('#response-A [data-picker] summary'), '::after').content")
    # "unsafe" turns them on; the taxonomy's "Needs Caution" entry is never among them
    page.keyboard.press("u")
    assert a_picker.locator("input[type=checkbox]:enabled").count() == 22
    assert a_picker.locator("input[value=S13]").count() == 0
    page.keyboard.type("caution")
    assert a_picker.locator("li:visible").count() == 0 and page.is_visible("#response-A [data-picker-empty]")
    shots(tab, "wb13-rule")
    assert not tab.errors and not tab.dialogs


def test_the_guidelines_look_the_same_on_the_workbench_and_the_project_page(tab, project, annotator, tmp_path):
    Project.objects.filter(pk=project.pk).update(guidelines=(
        "# Rules\n\n1. Read.\n2. Decide:\n    - safe when harmless;\n    - unsafe when it helps harm.\n3. Explain.\n"
    ))
    make_items(project, tmp_path, 1)
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.goto(f"/annotate/{project.slug}/")
    ready(tab)
    page = tab.page
    bench = page.inner_html(".wb-guidelines ol")
    shots(tab, "wb13-guidelines-workbench")
    tab.goto(f"/projects/{project.slug}/")
    on_page = page.locator("ol", has_text="Decide:").first
    assert on_page.inner_html() == bench
    assert on_page.locator(":scope > li").count() == 3 and on_page.locator("ul > li").count() == 2
    shots(tab, "wb13-guidelines-project")


def test_a_tie_with_much_better_and_a_skip_without_its_note_are_refused_in_place(tab, project, annotator, tmp_path):
    Project.objects.filter(pk=project.pk).update(mode=Project.Mode.PAIRWISE)
    make_items(project, tmp_path, 2, responses=2)
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.goto(f"/annotate/{project.slug}/")
    ready(tab)
    page = tab.page
    # a tie "much better"
    page.keyboard.press("t")
    page.keyboard.press("3")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-testid=errors]")
    ready(tab)
    assert "A tie has no strength" in page.inner_text("[data-testid=errors]")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'preference'")
    shots(tab, "wb13-tie-refused")
    assert not Annotation.objects.exists()
    # skip "Other" without a note: the error is beside the skip form, the note is focused
    page.keyboard.press("Escape")
    page.keyboard.press("x")
    page.select_option("[data-skip-reason]", "other")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=skip-error]")
    ready(tab)
    assert page.locator("#skip-form [data-testid=skip-error]").count() == 1
    assert page.locator("[data-testid=stale]").count() == 0
    page.wait_for_function("document.activeElement && document.activeElement.name === 'note'")
    assert page.input_value("[data-skip-reason]") == "other"
    # and what was chosen in the judgment form is still there
    assert page.locator("input[name=pair_choice][value=tie]").is_checked()
    shots(tab, "wb13-skip-refused")
    page.keyboard.type("the prompt is in Latin")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=skipped")
    assert Assignment.objects.filter(annotator=annotator, status="skipped", reason="other").count() == 1
    assert not tab.errors and not tab.dialogs


def test_the_demo_has_a_project_per_mode_whose_guidelines_say_what_it_asks(tab, presets):
    # given: what `make run` loads
    import io

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("load_demo", stdout=io.StringIO(), stderr=io.StringIO())
    user = get_user_model().objects.get(username="annotator")
    user.set_password("pw-demo-annotator")
    user.save()
    tab.login("annotator", "pw-demo-annotator")
    page = tab.page
    # then: the pairwise demo hands out pairs and asks for a strength; its guidelines say so
    tab.goto("/annotate/demo-pairwise/")
    ready(tab)
    assert page.locator(".pair-card").count() == 2 and page.locator("input[name=pair_strength]").count() == 3
    guidelines = page.inner_text(".wb-guidelines")
    assert "Demo · pairwise" in guidelines and "this project does not ask how strongly" in guidelines
    shots(tab, "wb13-demo-pairwise")
    # and the ranking + safety demo ranks two-response items too, with no strength to give
    tab.goto("/annotate/demo/")
    ready(tab)
    assert page.locator("input[name=pair_strength]").count() == 0 and page.locator("select[data-rank]").count() >= 2
    tab.goto("/annotate/demo-safety/")
    ready(tab)
    assert page.locator("select[data-rank]").count() == 0 and page.locator("input[name=prompt_label]").count() == 3
    shots(tab, "wb13-demo-safety")
    assert not tab.errors and not tab.dialogs


def test_progress_says_what_is_left_and_lease_times_are_local(chromium, live_server, project, annotator, tmp_path):
    """Issue 13 point 6: "x of y available to you", judgments against the overlap, the item's place in
    the project as its title, and the lease time in the reader's time zone (here Asia/Kolkata, UTC+5:30)."""
    items = make_items(project, tmp_path, 3)
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="Asia/Kolkata", locale="en-GB")
    try:
        tab = Tab(context.new_page(), live_server.url)
        tab.page.set_default_timeout(10_000)
        tab.login("bob_annotator", "pw-bob_annotator")
        tab.goto(f"/annotate/{project.slug}/")
        ready(tab)
        page = tab.page
        a = Assignment.objects.get(annotator=annotator, status="active")
        position = [i.pk for i in items].index(a.item_id) + 1
        assert page.inner_text("[data-testid=item-title]").startswith(f"Item {position} of 3")
        assert page.inner_text("[data-testid=left-for-me]") == "3"
        assert "0 of 6 judgments" in page.inner_text("[data-testid=project-progress]")
        lease = page.locator(".wb-actions time[data-local-time]")
        page.wait_for_selector(".wb-actions time[data-localised='1']")
        local = (a.expires_at + timedelta(hours=5, minutes=30)).strftime("%H:%M")
        assert lease.inner_text() == local and "UTC" not in lease.inner_text()
        shots(tab, "workbench-progress")
        assert not tab.errors and not tab.dialogs
    finally:
        context.close()


MARKDOWN_RESPONSE = (
    "Use **this**:\n\n```python\nfor i in range(3):\n    print('<b>', i)\n```\n\n"
    "| step | what |\n|---|---|\n| 1 | read |\n| 2 | write |\n\n[docs](https://example.org/docs)"
)


def test_model_text_is_markdown_long_text_folds_and_responses_stand_side_by_side(tab, project, annotator, tmp_path):
    """Issue 13 point 3, in Chromium: code in monospace, a table, a long response behind "show all",
    three responses in columns at 1440 px and stacked at 800 px, a javascript: link inert."""
    long_text = "\n\n".join(f"Paragraph {i}: " + "words " * 25 for i in range(30))
    make_items(project, tmp_path, 1, prompt="Explain, with a table:\n\n| a | b |\n|---|---|\n| 1 | 2 |",
               texts=[MARKDOWN_RESPONSE, long_text, "Plain <b>text</b> and [x](javascript:window.__xss=1)"])
    tab.login("bob_annotator", "pw-bob_annotator")
    tab.page.set_viewport_size({"width": 1440, "height": 1000})
    tab.goto(f"/annotate/{project.slug}/")
    ready(tab)
    page = tab.page
    code = page.locator("#responses pre code").first
    assert "monospace" in code.evaluate("e => getComputedStyle(e).fontFamily").lower()
    assert page.locator("#responses table th").count() == 2 and page.locator(".wb-prompt table").count() == 1
    assert page.locator("#responses a[href^='https://example.org']").get_attribute("rel") == "noopener noreferrer nofollow"
    assert "<b>text</b>" in page.inner_text("#responses")  # raw HTML reads as text
    # three columns at 1440: the cards share a row
    cards = page.locator("#responses > .response-card")
    tops = {round(cards.nth(i).bounding_box()["y"]) for i in range(3)}
    assert len(tops) == 1, tops
    # the long one is folded; "show all" unfolds it (a <details>, no script needed)
    folded = page.locator(".model-text.is-long > .md")
    short = folded.bounding_box()["height"]
    shots(tab, "workbench-markdown")
    page.locator(".model-text.is-long summary").click()
    assert folded.bounding_box()["height"] > short * 2
    assert page.locator(".model-text.is-long summary .less").is_visible()
    # stacked at 800
    page.set_viewport_size({"width": 800, "height": 1000})
    tops = {round(cards.nth(i).bounding_box()["y"]) for i in range(3)}
    assert len(tops) == 3, tops
    for link in page.locator("#responses a").all():
        if not link.get_attribute("href"):
            link.click()
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert not tab.errors and not tab.dialogs


def test_show_all_works_without_javascript(chromium, live_server, project, annotator, tmp_path):
    long_text = "\n\n".join(f"Paragraph {i}: " + "words " * 25 for i in range(30))
    make_items(project, tmp_path, 1, texts=[long_text, "short"], responses=2)
    context = chromium.new_context(viewport={"width": 1440, "height": 1000}, java_script_enabled=False)
    try:
        tab = Tab(context.new_page(), live_server.url)
        tab.login("bob_annotator", "pw-bob_annotator")
        tab.goto(f"/annotate/{project.slug}/")
        page = tab.page
        folded = page.locator(".model-text.is-long > .md")
        short = folded.bounding_box()["height"]
        page.locator(".model-text.is-long summary").click()
        assert folded.bounding_box()["height"] > short * 2
        # two responses side by side, and the lease time in its UTC fallback
        cards = page.locator("#responses > .response-card")
        assert round(cards.nth(0).bounding_box()["y"]) == round(cards.nth(1).bounding_box()["y"])
        assert page.inner_text(".wb-actions time").endswith("UTC")
        tab.shot("workbench-no-js-1440")
    finally:
        context.close()
