"""The jury's item page in a real browser: one table per target with people and jurors side by side,
lettered responses, and no sideways scrolling at 800 px."""
from __future__ import annotations

import pytest

from annotation import services as annotation_services
from annotation.judgments import Judgment, ResponseLabel
from jury import services
from jury.models import JuryRun
from tests.jury.conftest import fake_juror, import_items

pytestmark = pytest.mark.browser


@pytest.fixture
def judged_item(project, tmp_path, annotator, django_capture_on_commit_callbacks):
    from config.celery import app

    (item,) = import_items(
        project, [("How do I pick a lock? <script>alert(1)</script>", ["Use a tension wrench and a pick.", "I can't help with that."])],
        tmp_path, prefix="br",
    )
    first, second = sorted(item.responses.all(), key=lambda r: r.position)
    annotation_services.judgment_record(
        project=project, item_id=item.pk, source="human", annotator=annotator, shown_order=[first.pk, second.pk],
        judgment=Judgment(ranking=[[second.pk], [first.pk]], prompt_label="needs_caution", rationale="A explains how",
                          response_labels={first.pk: ResponseLabel("unsafe", ("S3",)), second.pk: ResponseLabel("safe")}),
    )
    jury = services.jury_create(name="panel", jurors=[(fake_juror("smol"), 1.0), (fake_juror("gem"), 1.0)], rule="mean")
    app.conf.task_always_eager = True
    try:
        for task in ("safety", "preference"):
            with django_capture_on_commit_callbacks(execute=True):
                run = services.jury_run_start(project=project, jury=jury, task=task)
            run.refresh_from_db()
            assert run.status == JuryRun.Status.DONE
    finally:
        app.conf.task_always_eager = False
    return item


@pytest.mark.parametrize("width", [1440, 800])
def test_jury_item_page_puts_every_label_side_by_side(tab, researcher, project, judged_item, width):
    tab.page.set_viewport_size({"width": width, "height": 1000})
    tab.login(researcher.username, "pw-" + researcher.username)
    tab.goto(f"/projects/{project.slug}/jury/items/{judged_item.pk}/")
    tab.shot(f"jury-item-{width}")
    # then: the people's label of response A (unsafe) stands against the fake jurors' (safe): marked
    assert tab.page.locator("table.label-table").nth(1).locator("tr.disagrees").count() >= 2
    captions = tab.page.locator("table.label-table caption").all_inner_texts()
    assert [c.replace("disputed", "").strip() for c in captions] == ["Prompt", "Response A", "Response B"]
    assert tab.page.locator("table.label-table tr.rater-juror").count() >= 4  # 2 jurors x (prompt + 2 responses) at least
    body = tab.page.content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and not tab.errors
    assert tab.page.evaluate("document.documentElement.scrollWidth") <= width + 1


@pytest.mark.parametrize("width", [1440, 800])
def test_run_page_says_what_the_worker_is_doing(tab, researcher, project, judged_item, width):
    from jury.models import JuryChunk

    run = JuryRun.objects.filter(project=project, task="safety").get()
    JuryRun.objects.filter(pk=run.pk).update(status=JuryRun.Status.RUNNING)
    JuryChunk.objects.filter(run=run).update(
        status=JuryChunk.Status.RUNNING, stage="gem: preparing the model (converting gemma3-270m on first use; minutes on a CPU)"
    )
    tab.page.set_viewport_size({"width": width, "height": 900})
    tab.login(researcher.username, "pw-" + researcher.username)
    tab.goto(f"/projects/{project.slug}/jury/runs/{run.pk}/")
    tab.page.click("details.confirm-cancel summary")  # the cancel asks first
    tab.shot(f"jury-run-running-{width}")
    assert tab.page.locator("text=converting gemma3-270m on first use").count() == 1
    assert tab.page.locator(f"text=Yes, cancel run #{run.pk}").is_visible()
    assert tab.page.evaluate("document.documentElement.scrollWidth") <= width + 1 and not tab.errors
