"""Flags reach the researchers (issue 13, point 10): a list of flagged items with the kind, the note
and who flagged, linked to the item's adjudication page; skips on request; 404 for annotators."""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.workbench import services as wb
from tests.annotation.web_fixtures import import_records, sample_records

pytestmark = pytest.mark.django_db

PERSONAS = ["admin", "researcher", "annotator", "outsider", "anonymous"]


@pytest.fixture
def flagged(project, researcher, annotator, tmp_path):
    records = sample_records(3)
    records[0]["prompt"] = "<script>alert('p')</script> broken one"
    import_records(project, tmp_path, records, user=researcher)
    first = wb.queue_next(project=project, annotator=annotator)
    wb.assignment_flag(project=project, annotator=annotator, item_id=first.item.pk, kind="broken",
                       note="<b>response B is empty</b>")
    second = wb.queue_next(project=project, annotator=annotator)
    wb.assignment_skip(project=project, annotator=annotator, item_id=second.item.pk, reason="language")
    return first.item, second.item


@pytest.mark.parametrize("persona", PERSONAS)
def test_flag_list_is_for_researchers_and_admins(login, project, flagged, persona):
    response = login(persona).get(reverse("flags", args=[project.slug]))
    assert response.status_code == {"admin": 200, "researcher": 200, "annotator": 404, "outsider": 404, "anonymous": 302}[persona]


def test_flag_list_shows_kind_note_and_who_escaped_and_skips_on_request(login, project, flagged, annotator):
    flagged_item, skipped_item = flagged
    client = login("researcher")
    html = client.get(reverse("flags", args=[project.slug])).content.decode()
    assert "Broken (empty, garbled, missing responses)" in html and annotator.username in html
    assert "&lt;b&gt;response B is empty&lt;/b&gt;" in html and "<b>response B" not in html
    assert reverse("adjudication-item", args=[project.slug, flagged_item.pk]) in html
    assert reverse("adjudication-item", args=[project.slug, skipped_item.pk]) not in html  # a skip is not a flag
    both = client.get(reverse("flags", args=[project.slug]) + "?skips=1").content.decode()
    assert reverse("adjudication-item", args=[project.slug, skipped_item.pk]) in both
    assert "Language I cannot judge" in both
    project_page = client.get(reverse("project", args=[project.slug])).content.decode()
    assert f'href="{reverse("flags", args=[project.slug])}"' in project_page
