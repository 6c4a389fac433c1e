"""Adjudication in a real browser: a rater who saw another order has their letters mapped to the page's,
so "A is wrong" is read against the right response (issue 13, point 9)."""
from __future__ import annotations

import pytest

from annotation.models import Assignment
from annotation.workbench import services as wb
from tests.annotation.workbench_fixtures import full_judgment, make_annotators, make_items

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1440, 800])
def test_adjudication_maps_each_raters_letters(tab, researcher, project, tmp_path, width):
    (item,) = make_items(project, tmp_path, 1)
    (user,) = make_annotators(project, 1)
    lease = wb.queue_next(project=project, annotator=user)
    source = [r.pk for r in sorted(item.responses.all(), key=lambda r: r.position)]
    Assignment.objects.filter(pk=lease.pk).update(shown_order=source[::-1])
    wb.annotation_submit(project=project, annotator=user, item_id=item.pk,
                         judgment=full_judgment(project, source[::-1], rationale="A is factually wrong"))
    tab.page.set_viewport_size({"width": width, "height": 1000})
    tab.login(researcher.username, "pw-" + researcher.username)
    tab.goto(f"/annotate/{project.slug}/adjudicate/{item.pk}/")
    tab.page.locator("[data-testid=letter-map]").scroll_into_view_if_needed()
    tab.shot(f"adjudication-letters-{width}")
    assert "their A is" in tab.page.locator("[data-testid=letter-map]").inner_text() and not tab.errors
