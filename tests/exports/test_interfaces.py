"""The export page, API and command: who may use them, what they start, what they return; the job
on a real Celery worker; streaming in bounded queries and flat memory."""
from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotation import services as core_services
from annotation.models import Item, Membership
from exports import services
from exports.evidence import _chunks_orm, _chunks_postgres, iter_chunks
from exports.models import Export
from exports.options import build_options
from exports.pipeline import run_export
from tests.exports.conftest import annotate, make_item
from tests.helpers.worker import broker_in_this_process, celery_worker, redis_url_or_skip, wait_for

PERSONAS = ("admin", "researcher", "annotator", "outsider", "anonymous")
ALLOWED = {"admin", "researcher"}


@pytest.fixture
def pairs(project, raters):
    made = []
    for i in range(6):
        item, (a, b) = make_item(project, f"question {i} <script>alert(1)</script>", [f"good {i}", f"bad {i}"])
        annotate(project, item, annotator=raters[0], pair=(a, b, "a", 2))
        made.append(item)
    return made


@pytest.fixture
def login(login, project, researcher):
    """The root conftest's ``login(persona)``, once the project's researcher is known to be one."""
    assert core_services is not None
    assert Membership.objects.get(project=project, user=researcher).role == "researcher"
    return login


def _finished_export(project, researcher, **options) -> Export:
    export = services.export_request(project=project, user=researcher, options=options, background=False)
    done = services.export_run(export_id=export.pk)
    assert done is not None
    return done


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
def test_it_shows_the_export_page_only_to_researchers_and_admins(persona, login, project, pairs, researcher, export_dir):
    # given
    export = _finished_export(project, researcher, format="dpo")
    client = login(persona)
    urls = [
        reverse("exports", args=[project.slug]),
        reverse("export-detail", args=[project.slug, export.pk]),
        reverse("export-download", args=[project.slug, export.pk, "train.jsonl"]),
        reverse("export-download-zip", args=[project.slug, export.pk]),
    ]
    for url in urls:
        # when
        response = client.get(url)
        # then
        if persona in ALLOWED:
            assert response.status_code == 200, url
        elif persona == "anonymous":
            assert response.status_code == 302 and "/login/" in response["Location"]
        else:
            assert response.status_code == 404, (persona, url)


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
def test_it_serves_the_export_api_only_to_researchers_and_admins(persona, login, project, pairs, researcher, export_dir):
    export = _finished_export(project, researcher, format="dpo")
    client = login(persona)
    urls = [
        reverse("api-exports", args=[project.slug]),
        reverse("api-export-detail", args=[project.slug, export.pk]),
        reverse("api-export-download", args=[project.slug, export.pk, "train.jsonl"]),
    ]
    for url in urls:
        response = client.get(url)
        if persona in ALLOWED:
            assert response.status_code == 200, url
        elif persona == "anonymous":
            assert response.status_code in (401, 403)
        else:
            assert response.status_code == 404, (persona, url)
    post = client.post(reverse("api-exports", args=[project.slug]), {"format": "dpo"}, content_type="application/json")
    assert post.status_code == (201 if persona in ALLOWED else 404 if persona in ("annotator", "outsider") else post.status_code)
    if persona == "anonymous":
        assert post.status_code in (401, 403)


@pytest.mark.django_db
def test_it_rejects_another_projects_export(login, project, other_project, pairs, researcher, admin_user, export_dir):
    # given: an export of the other project, and a researcher of this one
    other = services.export_request(project=other_project, user=admin_user, options={"format": "dpo"}, background=False)
    client = login("researcher")
    # then: the id does not leak through this project's URLs
    assert client.get(reverse("export-detail", args=[project.slug, other.pk])).status_code == 404
    assert client.get(reverse("api-export-detail", args=[project.slug, other.pk])).status_code == 404
    assert client.get(reverse("api-export-detail", args=[other_project.slug, other.pk])).status_code == 404


@pytest.mark.django_db
def test_page_configures_an_export_shows_progress_and_offers_the_download(
    login, project, pairs, export_dir, django_capture_on_commit_callbacks
):
    client = login("researcher")
    page = client.get(reverse("exports", args=[project.slug]))
    assert b'name="format"' in page.content and b"Start export" in page.content
    form = {"format": "dpo", "source": "human-only", "ranking_method": "borda", "tie_policy": "skip",
            "needs_caution": "defensive", "safety_tie": "skip", "style": "conversational", "pro_layout": "pro",
            "pair_policy": "best-vs-worst", "signal": "preference", "split_train": "0.5", "split_validation": "0.5",
            "split_test": "0", "seed": "4", "outputs": ["jsonl", "parquet"]}
    # when: submitted without JavaScript
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("exports", args=[project.slug]), form)
    # then: a job is queued after commit and the browser goes to its page
    export = Export.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("export-detail", args=[project.slug, export.pk])
    assert len(callbacks) == 1 and export.status == Export.Status.PENDING
    assert export.options["style"] == "conversational" and export.options["split"] == [0.5, 0.5, 0.0]
    pending = client.get(response["Location"])
    assert b'hx-get="' in pending.content and b'http-equiv="refresh"' in pending.content  # polls, with a no-JS refresh
    partial = client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert partial.content.strip().startswith(b'<section id="export-status"') and b"<html" not in partial.content
    # the worker's part (run here; the real worker is exercised in the integration test)
    services.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == Export.Status.DONE, export.error
    done = client.get(response["Location"])
    section = done.content.split(b"<section")[1].split(b"</section>")[0]
    split_file = "train.jsonl" if "train" in export.manifest["splits"] else "validation.jsonl"
    assert b"hx-get" not in section and split_file.encode() in section, section.decode()
    download = client.get(reverse("export-download", args=[project.slug, export.pk, split_file]))
    body = b"".join(download.streaming_content)
    assert download["Content-Disposition"].startswith("attachment")
    assert json.loads(body.splitlines()[0])["prompt"][0]["content"].endswith("<script>alert(1)</script>")
    # model text on the page is escaped (the options table shows only options; the list shows none)
    assert b"<script>alert(1)</script>" not in done.content
    # a crafted file name does not leave the export folder
    assert client.get(reverse("export-download", args=[project.slug, export.pk, "../../etc/passwd"])).status_code == 404


@pytest.mark.django_db
def test_page_shows_bad_options_as_errors(login, project, pairs, export_dir):
    client = login("researcher")
    form = {"format": "guard-aegis", "source": "human-only", "ranking_method": "borda", "tie_policy": "skip",
            "needs_caution": "defensive", "safety_tie": "skip", "style": "standard", "pro_layout": "pro",
            "pair_policy": "best-vs-worst", "signal": "preference", "split_train": "0.5", "split_validation": "0.1",
            "split_test": "0", "seed": "0", "outputs": ["jsonl"], "categories": "S99"}
    response = client.post(reverse("exports", args=[project.slug]), form)
    assert response.status_code == 400 and b"Unknown category code" in response.content
    assert not Export.objects.exists()


@pytest.mark.django_db
def test_api_creates_lists_details_and_downloads(login, project, pairs, export_dir, django_capture_on_commit_callbacks):
    client = login("researcher")
    url = reverse("api-exports", args=[project.slug])
    bad = client.post(url, {"format": "csv"}, content_type="application/json")
    assert bad.status_code == 400 and "Unknown format 'csv'" in bad.json()["options"][0]
    bad = client.post(url, {"format": "dpo", "options": {"min_agreement": 3}}, content_type="application/json")
    assert bad.status_code == 400 and "min_agreement must be between" in bad.json()["options"][0]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        created = client.post(url, {"format": "kto", "options": {"style": "conversational"}}, content_type="application/json")
    assert created.status_code == 201 and len(callbacks) == 1
    body = created.json()
    assert body["status"] == "pending" and body["options"]["style"] == "conversational"
    services.export_run(export_id=body["id"])
    detail = client.get(body["url"]).json()
    assert detail["status"] == "done" and detail["progress"] == 1.0 and detail["rows_written"] == 12
    assert detail["manifest"]["counts"]["labels"] == {"label:False": 6, "label:True": 6}
    names = {f["name"]: f for f in detail["files"]}
    assert {"train.jsonl", "train.parquet", "README.md", "manifest.json", "evidence.jsonl"} <= set(names)
    got = client.get(names["train.jsonl"]["url"])
    import hashlib
    assert hashlib.sha256(b"".join(got.streaming_content)).hexdigest() == names["train.jsonl"]["sha256"]
    listed = client.get(url).json()
    assert [e["id"] for e in listed] == [body["id"]]


@pytest.mark.django_db
def test_command_exports_and_fails_clearly(project, pairs, tmp_path):
    out = tmp_path / "dpo"
    call_command("export_dataset", "--project", project.slug, "--format", "dpo", "--out", str(out),
                 "--split", "0.5,0.5,0", "--include-margin")
    assert (out / "manifest.json").exists() and (out / "README.md").exists()
    # Items fall into splits by a hash of (seed, item id); with six items one split may get none,
    # and an empty split writes no file, so read whichever of the two exist.
    splits = [out / p for p in ("train.jsonl", "validation.jsonl") if (out / p).exists()]
    assert splits and not (out / "test.jsonl").exists()
    rows = [json.loads(x) for p in splits for x in p.read_text().splitlines()]
    assert len(rows) == 6 and all(r["margin"] == pytest.approx(2 / 3, abs=1e-6) for r in rows)  # "better": 2 of 3
    with pytest.raises(CommandError, match="Unknown format 'orpo'"):
        call_command("export_dataset", "--project", project.slug, "--format", "orpo", "--out", str(tmp_path / "x"))
    with pytest.raises(CommandError, match="exists and is not empty"):
        call_command("export_dataset", "--project", project.slug, "--format", "dpo", "--out", str(out))
    with pytest.raises(CommandError, match="No rows to export.*min_annotators: 6"):
        call_command("export_dataset", "--project", project.slug, "--format", "dpo", "--out", str(tmp_path / "y"),
                     "--min-annotators", "2")
    assert not (tmp_path / "y").exists()
    with pytest.raises(CommandError, match="No project"):
        call_command("export_dataset", "--project", "nope", "--format", "dpo", "--out", str(tmp_path / "z"))


# --- streaming ----------------------------------------------------------------------------------


def _many(project, raters, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        item, (a, b, c) = make_item(project, f"prompt {i} " + "x" * 200, [f"a {i} " + "y" * 300, f"b {i}", f"c {i}"])
        annotate(project, item, annotator=raters[0], ranking=[[a], [b], [c]],
                 prompt_label="unsafe", prompt_categories=["S1"], response_labels={a: ("safe", []), b: ("unsafe", ["S1"])})


@pytest.mark.django_db
def test_queries_are_bounded_per_chunk_not_per_item(project, raters):
    _many(project, raters, 60)
    for fmt in ("dpo", "guard-aegis"):
        options = build_options({"format": fmt, "chunk_size": 20})
        with CaptureQueriesContext(connection) as ctx:
            chunks = [len(c) for c in iter_chunks(project=project, options=options)]
        assert chunks == [20, 20, 20]
        # PostgreSQL: one query per chunk (JSON aggregates); elsewhere items, responses, annotations
        # (+ response labels for guard formats). Plus one last query that finds no more items.
        per_chunk = 1 if connection.vendor == "postgresql" else 4 if fmt == "guard-aegis" else 3
        assert len(ctx.captured_queries) == 3 * per_chunk + 1, [q["sql"][:80] for q in ctx.captured_queries]
        orm = [len(c) for c in _chunks_orm(project=project, options=options, size=20)]
        assert orm == [20, 20, 20]


@pytest.mark.django_db
@pytest.mark.postgres(reason="the JSON-aggregate evidence reader (exports.evidence._chunks_postgres)")
def test_the_postgres_and_portable_readers_yield_the_same_evidence(project, raters, ranked_and_safety_items):
    for raw in ({"format": "dpo"}, {"format": "guard-aegis", "exclude_flagged": True},
                {"format": "kto", "signal": "safety", "date_from": "2000-01-01"}):
        options = build_options({**raw, "chunk_size": 7})
        fast = [ev for chunk in _chunks_postgres(project=project, options=options, size=7) for ev in chunk]
        portable = [ev for chunk in _chunks_orm(project=project, options=options, size=7) for ev in chunk]
        assert len(fast) == len(portable) > 0
        flagged = Item.objects.get(metadata__flagged=True).pk
        assert (flagged in [ev.item_id for ev in fast]) is not options.exclude_flagged
        for a, b in zip(fast, portable):
            assert (a.item_id, a.external_id, a.prompt, a.responses) == (b.item_id, b.external_id, b.prompt, b.responses)
            assert [r.raw() for r in a.records] == [r.raw() for r in b.records]


@pytest.fixture
def ranked_and_safety_items(project, raters):
    _many(project, raters, 15)
    item, (a, b) = make_item(project, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                             ["Hello", "Yo"], metadata={"flagged": True})
    old = annotate(project, item, annotator=raters[1], pair=(a, b, "tie", 0))
    annotate(project, item, annotator=raters[1], pair=(a, b, "b", 3), supersedes=old)
    annotate(project, item, source="jury", pair=(a, b, "a", 1), prompt_label="needs_caution",
             response_labels={a: ("safe", []), b: ("unsafe", ["S12", "S10"])})


@pytest.mark.django_db
def test_memory_stays_flat_when_the_export_grows(project, raters, tmp_path):
    """Peak traced memory of an export of 100 items and of 400 items (same chunk size) are about
    the same: only one chunk is alive at a time. (The bench measures 100k vs 1M rows.)"""
    _many(project, raters, 100)
    options = build_options({"format": "dpo", "pair_policy": "all-ordered-pairs", "chunk_size": 50,
                             "outputs": ["jsonl", "parquet"]})

    def peak(out: Path) -> int:
        tracemalloc.start()
        run_export(project=project, options=options, out_dir=out)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    peak(tmp_path / "warm")  # imports and caches out of the way
    small = peak(tmp_path / "small")
    _many(project, raters, 300, start=100)
    large = peak(tmp_path / "large")
    rows = sum(1 for _ in open(tmp_path / "large" / "train.jsonl"))
    assert rows == 1200
    assert large < small * 1.5 + 256 * 1024, (small, large)


# --- the job on a real worker -------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
def test_an_export_job_runs_on_a_real_celery_worker(project, raters, researcher, tmp_path, settings):
    url = redis_url_or_skip()
    settings.EXPORT_DIR = tmp_path / "exports"
    _many(project, raters, 30)
    with broker_in_this_process(url), celery_worker(broker_url=url, log_path=tmp_path / "worker.log"):
        export = services.export_request(project=project, user=researcher,
                                         options={"format": "guard-llamaguard", "chunk_size": 10})
        assert export.status == Export.Status.PENDING

        def finished() -> bool:
            export.refresh_from_db()
            return export.is_finished

        wait_for(finished, timeout=60, what=f"export #{export.pk}")
    assert export.status == Export.Status.DONE, export.error
    assert export.items_done == export.items_total == 30 and export.rows_written == 90
    out = Path(export.out_dir)
    assert out == tmp_path / "exports" / f"export-{export.pk}"
    assert json.loads((out / "manifest.json").read_text()) == export.manifest
    # a duplicate delivery of the task does nothing (the claim is a conditional UPDATE)
    assert services.export_run(export_id=export.pk).status == Export.Status.DONE


@pytest.mark.django_db
def test_the_whole_export_folder_downloads_as_one_zip(login, project, pairs, researcher, export_dir):
    import io
    import zipfile

    # given: a finished export
    export = _finished_export(project, researcher, format="dpo")
    # when
    response = login("researcher").get(reverse("export-download-zip", args=[project.slug, export.pk]))
    # then: every listed file, under one folder, byte for byte as on disk
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith(f'attachment; filename="export-{export.pk}-dpo.zip"')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    folder = f"export-{export.pk}-dpo/"
    listed = {"manifest.json", *export.manifest["files"]}
    assert set(archive.namelist()) == {folder + name for name in listed}
    for name in listed:
        assert archive.read(folder + name) == (Path(export.out_dir) / name).read_bytes()
