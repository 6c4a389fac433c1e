"""Creating a project and adding a member in a real browser, at desktop and narrow widths."""
from __future__ import annotations

import pytest

from annotation.models import Membership, Project

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1440, 800])
def test_a_researcher_creates_a_project_and_adds_an_annotator(tab, researcher, outsider, presets, width):
    tab.page.set_viewport_size({"width": width, "height": 1000})
    tab.login(researcher.username, "pw-" + researcher.username)
    tab.goto("/")
    with tab.page.expect_navigation():
        tab.page.click("text=New project")
    tab.page.fill("input[name=name]", "Browser project")
    tab.page.fill("input[name=slug]", f"browser-{width}")
    tab.page.select_option("select[name=mode]", "safety")
    tab.shot(f"project-new-{width}")
    with tab.page.expect_navigation():
        tab.page.click("button:has-text('Create project')")
    project = Project.objects.get(slug=f"browser-{width}")
    assert project.mode == "safety" and tab.page.url.endswith(f"/projects/{project.slug}/members/")
    tab.page.fill("input[name=username]", outsider.username)
    with tab.page.expect_navigation():
        tab.page.click("button:has-text('Add')")
    tab.shot(f"project-members-{width}")
    assert Membership.objects.get(project=project, user=outsider).role == "annotator"
    assert tab.page.evaluate("document.documentElement.scrollWidth") <= width + 1 and not tab.errors
    tab.goto(f"/projects/{project.slug}/")
    tab.shot(f"project-page-{width}")
    assert tab.page.locator("nav.project-nav a").count() == 9  # import, adjudication, flags, jury, exports, guards, metrics, edits, members


@pytest.mark.parametrize("width", [1440, 800])
def test_flagged_items_list(tab, researcher, annotator, project, tmp_path, width):
    from annotation.workbench import services as wb
    from tests.annotation.web_fixtures import import_records, sample_records

    import_records(project, tmp_path, sample_records(2), user=researcher)
    lease = wb.queue_next(project=project, annotator=annotator)
    wb.assignment_flag(project=project, annotator=annotator, item_id=lease.item.pk, kind="harmful_to_view",
                       note="graphic violence in response A <img src=x onerror=alert(1)>")
    tab.page.set_viewport_size({"width": width, "height": 700})
    tab.login(researcher.username, "pw-" + researcher.username)
    tab.goto(f"/projects/{project.slug}/")
    with tab.page.expect_navigation():
        tab.page.click("nav.project-nav >> text=Flags")
    tab.shot(f"flags-{width}")
    assert tab.page.locator("table.flags tbody tr").count() == 1 and not tab.errors
    assert "Harmful to view" in tab.page.content() and tab.page.locator("table.flags img").count() == 0
    assert tab.page.evaluate("document.documentElement.scrollWidth") <= width + 1
