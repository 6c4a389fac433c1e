"""Accept/reject agreement of edit reviews in the project metrics and on the metrics page (issue 11),
checked against the ``krippendorff`` package and a hand count."""
from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from django.urls import reverse

from annotation.metrics.services import project_metrics
from tests.annotation.edit_review_fixtures import make_review_items, review_by_plan
from tests.annotation.workbench_fixtures import make_annotators

pytestmark = pytest.mark.django_db

PLAN = {
    0: ["accept", "accept", "reject"],
    1: ["reject", "fix", None],
    2: ["fix", "fix", "accept"],
}


@pytest.fixture
def reviewed(project, tmp_path, annotator):
    project.overlap = 3
    project.save(update_fields=["overlap"])
    items = make_review_items(project, tmp_path, n=3)
    raters = [annotator, *make_annotators(project, 2)]
    review_by_plan(project, items, raters, PLAN)
    return project


def test_verdict_agreement_in_the_report(reviewed):
    m = project_metrics(reviewed, n_boot=200, seed=1, use_cache=False)
    block = m["edit_review"]
    assert (block["n_items"], block["n_ratings"]) == (3, 8)
    assert block["verdicts"] == {"accept": 3, "reject": 2, "fix": 3}
    fig = block["agreement"]
    # percent agreement: the mean share of agreeing pairs per edit: (1/3 + 0 + 1/3) / 3
    assert fig["percent_agreement"]["value"] == pytest.approx(2 / 9)
    codes = {"accept": 0, "reject": 1, "fix": 2}
    data = np.array([[codes.get(PLAN[i][r], np.nan) if PLAN[i][r] else np.nan for i in range(3)] for r in range(3)],
                    dtype=float)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert fig["alpha_nominal"]["value"] == pytest.approx(expected)
    assert fig["alpha_nominal"]["n_items"] == 3
    low, high = fig["alpha_nominal"]["low"], fig["alpha_nominal"]["high"]
    assert low is not None and high is not None and low <= high
    assert not math.isnan(low)
    # the rater matrix holds the three reviewers and the consensus
    assert set(block["matrix"]["raters"]) == {"bob_annotator", "ann0", "ann1", "consensus"}
    # judge items' figures are untouched by the verdicts
    assert m["response_safety"]["n_ratings"] == 3 * 3


def test_the_metrics_page_has_a_line_for_edit_reviews(reviewed, login):
    from django.core.cache import cache

    cache.clear()  # cached by project id and newest annotation id, which another test may share
    html = login("researcher").get(reverse("project-metrics", args=[reviewed.slug]) + "?bootstrap=50").content.decode()
    assert 'data-testid="edit-review"' in html
    assert "Accept/reject agreement: 3 reviewed edits, 8 verdicts (accept 3, reject 2, fix 3" in html
    csv = login("researcher").get(reverse("project-metrics", args=[reviewed.slug]),
                                  {"download": "agreement.csv", "bootstrap": 50}).content.decode()
    assert "edit_review,percent_agreement," in csv
