"""The export form's PRO length options and the import batch's skipped-rows breakdown, in headless
Chromium at a wide and a narrow width (screenshots in test-artifacts/screenshots/)."""
from __future__ import annotations

import pytest

from annotation.importing import import_file
from annotation.models import ImportBatch
from tests.annotation.web_fixtures import sample_records, write_jsonl

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_import_summary_and_export_pro_length_render(tab, project, researcher, tmp_path):
    # given: a file with one record twice (a duplicate inside the file)
    records = sample_records(3)
    path = write_jsonl(tmp_path / "items.jsonl", [*records, {**records[0], "id": ""}])
    batch = import_file(project=project, path=path, source_name=path.name, fmt="tribunal")
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    tab.login("rita_researcher", "pw-rita_researcher")
    page = tab.page
    for width in (1440, 800):
        page.set_viewport_size({"width": width, "height": 1000})
        # then: the batch page separates the skipped rows by reason
        tab.goto(f"/projects/{project.slug}/imports/{batch.pk}/")
        text = page.inner_text("main")
        assert "1 duplicates in the file, 0 already in the project, 0 ignored" in text
        tab.shot(f"import-batch-skipped-{width}")
        # and the export form offers the PRO ranking length
        tab.goto(f"/projects/{project.slug}/exports/")
        assert page.is_visible("input[name=pro_length]") and page.is_visible("select[name=pro_length_policy]")
        assert "codes, names or aliases" in page.inner_text("main")
        tab.shot(f"exports-form-{width}")
    assert tab.errors == [] and tab.dialogs == []
