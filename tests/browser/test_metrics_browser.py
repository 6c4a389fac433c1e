"""The researcher's metrics page in headless Chromium, at 1440 and 800 px wide, with real data: the
small real project of ``test_metrics_project`` (workbench annotators, imported raters, the jury),
HateCheck's annotators imported through the ``csv-raters`` format (a slice: 10 raters, so the
heatmaps are wide), the jury's p_i for the discretion section; and the demo project of
``load_demo``. Screenshots go to ``test-artifacts/screenshots/``; the page must never scroll
sideways (wide parts scroll in their own boxes)."""
from __future__ import annotations

import csv
import random

import pytest
from django.core.management import call_command

from annotation import services
from annotation.importing import import_file
from annotation.models import ImportBatch, Item
from annotation.services import PreferenceIn
from tests.annotation.test_import_multirater import HATECHECK, HATECHECK_MAPPING
from tests.annotation.test_metrics_project import built  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SLICE = 300
WIDTHS = (1440, 800)


def _no_sideways_scroll(tab) -> None:
    over = tab.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert over <= 0, f"the page scrolls sideways by {over} px"


def _record_p_i(project) -> int:
    """The jury's p_i on every pair of two responses of the project, seeded."""
    rng = random.Random(3)
    principles = list(project.principle_set.principles.order_by("order", "code").values_list("pk", flat=True)[:6])
    rows = []
    for item in Item.objects.filter(project=project).prefetch_related("responses"):
        ids = sorted(r.pk for r in item.responses.all())
        if len(ids) < 2:
            continue
        for pid in principles:
            sign = rng.choice([1, -1, None, None])
            prob_a = 0.5 if sign is None else (0.8 if sign > 0 else 0.1)
            rows.append(PreferenceIn(item_id=item.pk, pair_a_id=ids[0], pair_b_id=ids[1], principle_id=pid,
                                     prob_a=prob_a, prob_b=0.5 if sign is None else 0.9 - prob_a,
                                     prob_na=0.0 if sign is None else 0.1, preference=sign))
    services.principle_preferences_record(project=project, preferences=rows, source="jury", rater="run1",
                                          source_detail="default")
    return len(rows)


@pytest.mark.skipif(not HATECHECK.is_file(), reason=f"HateCheck data not present at {HATECHECK} (../shared/data)")
def test_the_metrics_page_with_hatecheck_raters_at_two_widths(tab, project, built, researcher, tmp_path):
    # given: the small real project, the jury's p_i on its pairs, and a HateCheck slice of 10 raters
    assert _record_p_i(project) > 0
    with open(HATECHECK, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [row for _, row in zip(range(SLICE), reader)]
        fields = reader.fieldnames
    path = tmp_path / "hatecheck-slice.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    batch = import_file(project=project, path=path, source_name=path.name, options={"mapping": HATECHECK_MAPPING})
    assert batch.status == ImportBatch.Status.DONE, batch.errors[:3]
    # when
    tab.login(researcher.username, "pw-" + researcher.username)
    for width in WIDTHS:
        tab.page.set_viewport_size({"width": width, "height": 1000})
        response = tab.goto(f"/projects/{project.slug}/metrics/?bootstrap=50")
        assert response.status == 200
        # then: every section is there, drawn on the server
        for section in ("progress", "prompt_safety", "annotators", "disputed", "discretion"):
            assert tab.page.locator(f'[data-testid="{section}"]').count() == 1, section
        assert tab.page.locator('[data-testid="prompt_safety"] svg.heatmap g.hm-cell').count() >= 15 * 15
        assert tab.page.locator('[data-testid="discretion-table"] tbody tr').count() >= 3
        assert tab.page.locator('[data-testid="disputed-table"] a[href*="/adjudicate/"]').count() >= 1
        tab.shot(f"metrics-hatecheck-{width}")
        _no_sideways_scroll(tab)
    assert not tab.errors and not tab.dialogs


def test_the_metrics_page_of_the_demo_project_at_two_widths(tab, tmp_path):
    from django.contrib.auth import get_user_model

    call_command("load_demo", stdout=open(tmp_path / "demo.log", "w"))
    user = get_user_model().objects.get(username="researcher")
    user.set_password("pw-demo-researcher")
    user.save()
    tab.login("researcher", "pw-demo-researcher")
    for width in WIDTHS:
        tab.page.set_viewport_size({"width": width, "height": 1000})
        response = tab.goto("/projects/demo/metrics/?bootstrap=50")
        assert response.status == 200
        for section in ("progress", "annotators", "disputed", "discretion"):
            assert tab.page.locator(f'[data-testid="{section}"]').count() == 1, section
        tab.shot(f"metrics-demo-{width}")
        _no_sideways_scroll(tab)
    assert not tab.errors and not tab.dialogs
