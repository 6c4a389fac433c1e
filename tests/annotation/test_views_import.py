"""The browser import: upload page, redirect to the batch page, htmx-polled progress, errors."""
from __future__ import annotations

import pytest

from annotation.models import ImportBatch, Item
from tests.annotation.web_fixtures import XSS_SCRIPT, sample_records, write_jsonl

pytestmark = pytest.mark.django_db


def test_the_upload_page_offers_a_file_and_every_format(client, researcher, project):
    client.force_login(researcher)
    html = client.get("/projects/demo/import/").content.decode()
    assert 'enctype="multipart/form-data"' in html and 'type="file"' in html
    for value in ("auto", "tribunal", "csv", "hh-rlhf", "oasst", "aegis"):
        assert f'value="{value}"' in html


def test_uploading_imports_and_redirects_to_the_batch_page(client, researcher, project, tmp_path):
    # given
    client.force_login(researcher)
    path = write_jsonl(tmp_path / "good.jsonl", sample_records(5))
    # when
    with path.open("rb") as fh:
        response = client.post("/projects/demo/import/", {"file": fh, "format": "auto"})
    # then
    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/projects/demo/imports/{batch.pk}/"
    assert batch.status == "done" and batch.items_created == 5 and batch.created_by == researcher
    assert Item.objects.filter(project=project).count() == 5
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "Done" in html and "Tribunal JSONL" in html and '<dd id="items-created">5</dd>' in html
    assert 'hx-trigger="every' not in html and 'http-equiv="refresh"' not in html  # finished: no polling


def test_a_failed_import_lists_every_error_by_line_escaped(client, researcher, project, tmp_path):
    # given: a file whose bad lines carry markup
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"prompt": "ok", "responses": ["a", "b"]}\n'
        f'{{"prompt": "{XSS_SCRIPT}"}}\n'
        f"<script>alert(9)</script>\n",
        encoding="utf-8",
    )
    client.force_login(researcher)
    # when
    with path.open("rb") as fh:
        response = client.post("/projects/demo/import/", {"file": fh, "format": "tribunal"}, follow=True)
    # then
    html = response.content.decode()
    batch = ImportBatch.objects.get()
    assert batch.status == "failed" and batch.error_count == 2
    assert "nothing was stored" in html
    for error in batch.errors:
        assert f'<td class="num">{error["line"]}</td>' in html
    assert "<script>alert" not in html
    assert Item.objects.count() == 0


def test_a_missing_file_redisplays_the_form_with_an_error(client, researcher, project):
    client.force_login(researcher)
    response = client.post("/projects/demo/import/", {"format": "auto"})
    assert response.status_code == 400
    assert b"This field is required" in response.content
    assert ImportBatch.objects.count() == 0


def test_a_background_batch_is_polled_by_htmx_and_reloads_without_js(client, researcher, project, tmp_path, settings):
    # given: every file goes to the background (the worker is not running in this test)
    settings.IMPORT_BACKGROUND_THRESHOLD = 0
    client.force_login(researcher)
    path = write_jsonl(tmp_path / "big.jsonl", sample_records(3))
    with path.open("rb") as fh:
        url = client.post("/projects/demo/import/", {"file": fh, "format": "auto"})["Location"]
    batch = ImportBatch.objects.get()
    assert batch.status == "pending"
    # when: a plain browser loads the page
    html = client.get(url).content.decode()
    # then: it polls with htmx, and reloads itself (and offers a link) without JS
    assert f'hx-get="{url}" hx-trigger="every 2s"' in html
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
    assert f'<a href="{url}">Reload</a>' in html
    # when: htmx polls
    partial = client.get(url, HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    # then: only the region comes back
    assert partial.status_code == 200
    assert body.lstrip().startswith('<section id="batch-status"') and "<html" not in body and "<h1>" not in body
    assert "Pending" in body and "<progress" in body
    assert "HX-Request" in partial["Vary"]
    # when the worker has finished it
    from annotation.importing import import_batch_run

    import_batch_run(batch_id=batch.pk)
    body = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    # then the region stops polling and shows the counts
    assert "hx-trigger" not in body and "Done" in body and '<dd id="items-created">3</dd>' in body
