"""Issue 13 (points 2, 4, 7, 11, 12) on the server side: errors named by letter, nothing pre-selected
unless the project opts in, the one "needs caution" rule, one guidelines renderer, a tie with a
strength refused, a skip error shown beside the skip form."""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from annotation.judgments import JudgmentInvalid, is_label_category
from annotation.models import Annotation, Assignment, Project
from annotation.workbench import services as wb
from annotation.workbench.forms import judgment_from_post
from tests.annotation.workbench_fixtures import make_items

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _serve(project, annotator) -> tuple[Client, Assignment, str]:
    c = _client(annotator)
    page = c.get(reverse("workbench", args=[project.slug]))
    assert page.status_code == 200
    return c, Assignment.objects.get(annotator=annotator, status="active"), page.content.decode()


def _checked_labels(html: str) -> list[str]:
    return re.findall(r'name="label-\d+" value="(\w+)" checked', html)


# --- 4: defaults -----------------------------------------------------------------------------------


def test_nothing_is_preselected_unless_the_project_opts_in(project, annotator, tmp_path):
    # given: a ranking + safety project (it used to pre-select "safe" on every response)
    make_items(project, tmp_path, 2)
    # when
    _c, _a, html = _serve(project, annotator)
    # then: no label, no rank, no confidence is chosen
    assert _checked_labels(html) == []
    assert "{#" not in html and "{% " not in html  # no template comment leaks into the page
    assert 'name="confidence" value="3" checked' not in html and "selected>1<" not in html
    # and the confidence scale has labelled ends
    assert 'data-testid="confidence-low">a guess<' in html and 'data-testid="confidence-high">certain<' in html

    # when the project opts in
    Project.objects.filter(pk=project.pk).update(preselect_safe=True)
    _c, a, html = _serve(project, annotator)
    # then every response starts at "safe"
    assert _checked_labels(html) == ["safe"] * len(a.shown_order)


# --- 2: errors -------------------------------------------------------------------------------------


def test_every_error_is_in_the_banner_by_letter_in_the_order_of_the_form(project, annotator, tmp_path):
    make_items(project, tmp_path, 1, responses=3)
    c, a, _ = _serve(project, annotator)
    order = a.shown_order
    # B and C unranked, C labelled unsafe without category, A unlabelled, confidence out of range
    data = {"item": a.item_id, "idempotency_key": "k", f"rank-{order[0]}": "1",
            f"label-{order[1]}": "safe", f"label-{order[2]}": "unsafe", "confidence": "9"}
    resp = c.post(reverse("workbench-submit", args=[project.slug]), data, HTTP_HX_REQUEST="true")
    assert resp.status_code == 422
    html = resp.content.decode()
    items = re.findall(r'<li><a href="#([\w-]+)" data-error-target="[\w-]+">([^<]*)</a></li>', html)
    assert items == [
        ("response-B", "Responses B and C have no rank; rank every response."),
        ("response-A", "Response A: Label this response: safe, needs caution or unsafe."),
        ("response-C", "Response C: Unsafe needs at least one category."),
        ("confidence", "Confidence is a whole number from 1 to 5."),
    ]
    # (the exact messages above hold letters only; no list of ids such as "[5, 7]" anywhere)
    assert "[" not in html.split('data-testid="errors"', 1)[1].split("</div>", 1)[0]
    assert html.count("has-error") == 3  # A (label), B (rank), C (rank and category)
    assert not Annotation.objects.exists()


def test_the_api_still_names_responses_by_id(project, annotator, tmp_path):
    # the letters are the pages'; an API client sends ids and gets ids back
    make_items(project, tmp_path, 1, responses=2)
    a = wb.queue_next(project=project, annotator=annotator)
    judgment, _ = judgment_from_post(_qd({f"rank-{a.shown_order[0]}": "1"}), response_ids=a.shown_order, mode=project.mode)
    with pytest.raises(JudgmentInvalid) as exc:
        wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id, judgment=judgment)
    assert f"Responses [{a.shown_order[1]}] have no rank" in exc.value.errors["ranking"][0]


def _qd(values: dict):
    from django.http import QueryDict

    q = QueryDict(mutable=True)
    for k, v in values.items():
        q.setlist(k, v if isinstance(v, list) else [v])
    return q


# --- 7: the one "needs caution" rule -----------------------------------------------------------------


def test_needs_caution_is_a_label_never_a_category(project, annotator, tmp_path):
    make_items(project, tmp_path, 1, responses=2)
    c, a, html = _serve(project, annotator)
    # the picker does not offer Aegis's "Needs Caution" entry (S13), and offers the hazards
    assert 'value="S13"' not in html and 'value="S1"' in html and 'value="S14"' in html
    assert is_label_category("Needs  caution") and not is_label_category("Other")
    first, second = a.shown_order
    base = {"item": a.item_id, "idempotency_key": "k", f"rank-{first}": "1", f"rank-{second}": "2"}
    # a posted S13 with "unsafe" is refused with the rule, by letter
    resp = c.post(reverse("workbench-submit", args=[project.slug]),
                  {**base, f"label-{first}": "unsafe", f"cat-{first}": ["S13"], f"label-{second}": "safe"})
    assert resp.status_code == 422
    assert ("Response A: &quot;Needs Caution&quot; is a label, not a hazard category: choose the label "
            "&quot;needs caution&quot; instead.") in resp.content.decode()
    # "needs caution" with a category is refused with what to do instead
    resp = c.post(reverse("workbench-submit", args=[project.slug]),
                  {**base, f"label-{first}": "needs_caution", f"cat-{first}": ["S1"], f"label-{second}": "safe"})
    assert resp.status_code == 422
    assert "For &quot;needs caution&quot;, choose the label alone, without categories." in resp.content.decode()
    # and the label alone is accepted
    resp = c.post(reverse("workbench-submit", args=[project.slug]),
                  {**base, f"label-{first}": "needs_caution", f"label-{second}": "safe"})
    assert resp.status_code == 302
    assert Annotation.objects.get().response_safety.get(response_id=first).label == "needs_caution"


# --- 12: pairwise tie with a strength; skip "other" without a note ------------------------------------


def test_a_pairwise_tie_with_much_better_is_refused(project, annotator, tmp_path):
    Project.objects.filter(pk=project.pk).update(mode=Project.Mode.PAIRWISE)
    project.refresh_from_db()
    make_items(project, tmp_path, 1, responses=2)
    c, a, _ = _serve(project, annotator)
    resp = c.post(reverse("workbench-submit", args=[project.slug]),
                  {"item": a.item_id, "idempotency_key": "k", "pair_choice": "tie", "pair_strength": "3"})
    assert resp.status_code == 422
    html = resp.content.decode()
    assert 'href="#preference"' in html
    assert "A tie has no strength: clear &quot;slightly / better / much better&quot;, or choose A or B" in html
    assert not Annotation.objects.exists()
    # a tie alone is stored with strength 0
    resp = c.post(reverse("workbench-submit", args=[project.slug]),
                  {"item": a.item_id, "idempotency_key": "k2", "pair_choice": "tie"})
    assert resp.status_code == 302
    assert (Annotation.objects.get().pair_choice, Annotation.objects.get().pair_strength) == ("tie", 0)


def test_skip_other_without_a_note_shows_its_error_beside_the_skip_form(project, annotator, tmp_path):
    make_items(project, tmp_path, 2)
    c, a, _ = _serve(project, annotator)
    resp = c.post(reverse("workbench-skip", args=[project.slug]),
                  {"item": a.item_id, "action": "skip", "reason": "other", "note": "  "}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 422
    html = resp.content.decode()
    skip_form = html.split('id="skip-form"', 1)[1].split("</form>", 1)[0]
    assert 'data-testid="skip-error">Say why you skip when the reason is &#x27;other&#x27;.<' in skip_form
    assert '<option value="other" selected>' in skip_form
    assert 'data-testid="stale"' not in html  # not the stale-item box
    # the same item is still the annotator's
    assert Assignment.objects.get(pk=a.pk).status == "active" and f'name="item" value="{a.item_id}"' in html


# --- 11: one guidelines renderer -------------------------------------------------------------------

NESTED = """# Our rules

1. Read the prompt.
2. Decide:
    - safe when harmless;
    - unsafe when it helps harm.
3. Explain.

Term
:   its definition
"""


def test_the_guidelines_render_the_same_on_the_workbench_and_the_project_page(project, annotator, tmp_path):
    Project.objects.filter(pk=project.pk).update(guidelines=NESTED)
    make_items(project, tmp_path, 1)
    c = _client(annotator)
    bench = c.get(reverse("workbench", args=[project.slug])).content.decode()
    page = c.get(reverse("project", args=[project.slug])).content.decode()

    def rendered(html: str) -> str:
        start = html.index("<h3>Our rules</h3>")  # a "# " heading sits below the page H1 and the Guidelines H2
        return html[start:html.index("</dl>", start) + 5]

    # the sub-list stays a nested list under step 2 (not steps 4-6, not a flattened paragraph)
    once = rendered(bench)
    assert re.search(r"<li>\s*<p>Decide:</p>\s*<ul>\s*<li>safe when harmless;</li>", once) or re.search(
        r"<li>Decide:\s*<ul>\s*<li>safe when harmless;</li>", once), once
    assert "<ol>" in once and once.count("<ol") == 1 and "<dl>" in once
    assert rendered(page) == once
