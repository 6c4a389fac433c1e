"""Bad input: every error is listed by line and reason, and NOTHING from the file is stored."""
from __future__ import annotations

import contextlib
import json
import threading
import tracemalloc

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from annotation.importing import import_file
from annotation.importing.reader import ErrorLog, LineReader
from annotation.models import ImportBatch, Item
from tests.annotation.import_helpers import FIXTURES, NOTHING, assert_failed_and_empty, stored

pytestmark = pytest.mark.django_db

GOOD = json.dumps({"id": "g-1", "prompt": "a fine prompt", "responses": ["a fine answer"]}).encode()


def _write(tmp_path, name: str, lines: list[bytes]):
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


BAD_LINES = {
    "invalid JSON": (b'{"prompt": "x", "responses": ["y"]', "invalid JSON: "),
    "missing prompt": (json.dumps({"responses": ["an answer"]}).encode(), "missing prompt"),
    "blank prompt": (json.dumps({"prompt": "  ", "responses": ["an answer"]}).encode(), "missing prompt (it is blank)"),
    "no responses": (json.dumps({"prompt": "a question", "responses": []}).encode(), "no responses"),
    "responses key absent": (json.dumps({"prompt": "a question"}).encode(), "no responses"),
    "ranking names an unknown reply": (
        json.dumps({"prompt": "q", "responses": [{"id": "x", "text": "1"}, {"id": "y", "text": "2"}],
                    "ranking": [["x"], ["nope"]]}).encode(),
        "ranking names an unknown response 'nope'",
    ),
    "ranking index out of range": (
        json.dumps({"prompt": "q", "responses": ["1", "2"], "ranking": [[0], [5]]}).encode(),
        "ranking names an unknown response 5 (there are 2 responses, from 0)",
    ),
    "non-UTF-8 bytes": (b'{"prompt": "caf\xe9", "responses": ["ok"]}', "not valid UTF-8: byte 0xe9 at position 16"),
    "unknown category": (
        json.dumps({"prompt": "q", "responses": ["r"],
                    "safety": {"prompt_label": "unsafe", "prompt_categories": ["Violence", "Jaywalking"]}}).encode(),
        "unknown category 'Jaywalking' (not in taxonomy Aegis 2.0 v1)",
    ),
    "NUL character": (json.dumps({"prompt": "a\u0000b", "responses": ["r"]}).encode(), "NUL character"),
    "not an object": (b'["a", "list"]', "expected a JSON object, got a list"),
}


@pytest.mark.parametrize("case", list(BAD_LINES), ids=list(BAD_LINES))
def test_a_bad_line_fails_the_whole_file(project, tmp_path, case):
    # given a good line, the bad line (line 2), and another good line
    bad, reason = BAD_LINES[case]
    other = json.dumps({"prompt": "second fine prompt", "responses": ["ok"]}).encode()
    path = _write(tmp_path, "data.jsonl", [GOOD, bad, other])
    # when
    batch = import_file(project=project, path=path, source_name="data.jsonl")
    # then
    assert_failed_and_empty(batch, project)
    assert batch.error_count == 1
    assert batch.errors[0]["line"] == 2
    assert reason in batch.errors[0]["error"]


@override_settings(IMPORT_MAX_LINE_BYTES=1024)
def test_a_line_over_the_size_limit_is_an_error_of_its_line(project, tmp_path):
    long_line = json.dumps({"prompt": "x" * 5000, "responses": ["r"]}).encode()
    path = _write(tmp_path, "data.jsonl", [GOOD, long_line, GOOD])
    batch = import_file(project=project, path=path, source_name="data.jsonl")
    assert_failed_and_empty(batch, project)
    assert batch.errors == [{"line": 2, "error": "line is longer than the limit of 1024 bytes"}]


def test_the_reader_does_not_hold_a_giant_line_in_memory(tmp_path):
    # given a 40 MB line between two short ones
    path = tmp_path / "giant.jsonl"
    with open(path, "wb") as fh:
        fh.write(b'{"a": 1}\n' + b"x" * (40 * 1024 * 1024) + b'\n{"b": 2}\n')
    errors = ErrorLog(cap=10)
    # when
    tracemalloc.start()
    lines = list(LineReader(path, max_line_bytes=64 * 1024, errors=errors))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # then: it skipped the line in bounded chunks (peak far below the line's 40 MB)
    assert [n for n, text in lines] == [1, 2, 3] and lines[1][1] is None and lines[2][1] == '{"b": 2}\n'
    assert errors.items == [{"line": 2, "error": "line is longer than the limit of 65536 bytes"}]
    assert peak < 4 * 1024 * 1024


@override_settings(IMPORT_MAX_LINE_BYTES=1024)
def test_every_error_of_a_file_is_listed_by_line(project):
    # given the hand-written file with one problem on each of lines 2..9
    batch = import_file(project=project, path=FIXTURES / "bad_mixed.jsonl", source_name="bad_mixed.jsonl")
    # then
    assert_failed_and_empty(batch, project)
    assert batch.error_count == 8
    assert [(e["line"], e["error"].split(":")[0]) for e in batch.errors] == [
        (2, "invalid JSON"),
        (3, "missing prompt"),
        (4, "no responses"),
        (5, "ranking names an unknown response 'z'"),
        (6, "not valid UTF-8"),
        (7, "unknown category 'Jaywalking' (not in taxonomy Aegis 2.0 v1)"),
        (8, "line is longer than the limit of 1024 bytes"),
        (9, "expected a JSON object, got a list"),
    ]


def test_bad_aegis_rows_are_listed(project):
    batch = import_file(project=project, path=FIXTURES / "aegis_bad.csv", source_name="aegis_bad.csv")
    assert_failed_and_empty(batch, project)
    assert batch.detected_format == "aegis"
    assert batch.errors == [
        {"line": 3, "error": "unknown category 'Time Travel' (not in taxonomy Aegis 2.0 v1)"},
        {"line": 4, "error": "missing prompt"},
        {"line": 5, "error": "prompt_label must be safe, needs_caution or unsafe, got 'maybe'"},
    ]


@override_settings(IMPORT_MAX_ERRORS=3)
def test_all_errors_are_counted_but_only_the_first_ones_kept(project, tmp_path):
    path = _write(tmp_path, "data.jsonl", [b"{oops"] * 10)
    batch = import_file(project=project, path=path, source_name="data.jsonl", fmt="tribunal")
    assert_failed_and_empty(batch, project)
    assert batch.error_count == 10
    assert [e["line"] for e in batch.errors] == [1, 2, 3]


def test_an_id_already_used_by_another_item_is_an_error_not_a_skip(project, tmp_path):
    # given an item with external id "g-1"
    assert import_file(project=project, path=_write(tmp_path, "a.jsonl", [GOOD]), source_name="a.jsonl").status == "done"
    before = stored(project)
    # when another file reuses "g-1" for different content
    other = json.dumps({"id": "g-1", "prompt": "something else", "responses": ["r"]}).encode()
    new = json.dumps({"id": "g-2", "prompt": "new", "responses": ["r"]}).encode()
    batch = import_file(project=project, path=_write(tmp_path, "b.jsonl", [new, other]), source_name="b.jsonl")
    # then
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.errors == [{"line": 2, "error": "id 'g-1' is already used by a different item in this project"}]
    assert stored(project) == before  # g-2 was not stored either


def test_an_id_used_twice_in_one_file_for_different_items_is_an_error(project, tmp_path):
    clash = json.dumps({"id": "g-1", "prompt": "different", "responses": ["r"]}).encode()
    batch = import_file(project=project, path=_write(tmp_path, "a.jsonl", [GOOD, clash]), source_name="a.jsonl")
    assert_failed_and_empty(batch, project)
    assert batch.errors == [{"line": 2, "error": "id 'g-1' is used by a different item earlier in this file"}]


def test_a_project_is_not_affected_by_a_failure_in_another(project, other_project, tmp_path):
    import_file(project=project, path=_write(tmp_path, "a.jsonl", [GOOD]), source_name="a.jsonl")
    batch = import_file(project=other_project, path=_write(tmp_path, "b.jsonl", [GOOD, b"{"]), source_name="b.jsonl")
    assert_failed_and_empty(batch, other_project)
    assert stored(project)["items"] == 1


@override_settings(IMPORT_MAX_LINE_BYTES=1024)
def test_the_command_lists_errors_and_fails(project, capsys):
    with pytest.raises(CommandError, match="failed with 8 error"):
        call_command("import_items", str(FIXTURES / "bad_mixed.jsonl"), "--project", "demo")
    err = capsys.readouterr().err
    assert "line 2: invalid JSON: unexpected end of data at character 54" in err and "line 7: unknown category 'Jaywalking'" in err
    assert stored(project) == NOTHING


def test_the_command_reports_counts(project, capsys):
    call_command("import_items", str(FIXTURES / "good_tribunal.jsonl"), "--project", "demo", "--format", "tribunal")
    out = capsys.readouterr().out
    assert "4 items created, 1 skipped" in out and "8 responses, 3 imported annotations" in out


def test_the_command_rejects_an_unknown_project(db, capsys):
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call_command("import_items", str(FIXTURES / "good_tribunal.jsonl"), "--project", "nope")


@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_of_one_file_store_it_once(project, tmp_path):
    lines = [json.dumps({"id": f"c-{n}", "prompt": f"prompt {n}", "responses": ["a", "b"]}).encode() for n in range(300)]
    path = _write(tmp_path, "same.jsonl", lines)
    results: list[ImportBatch] = []

    def run() -> None:
        try:
            results.append(import_file(project=project, path=path, source_name="same.jsonl"))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted((b.status, b.items_created, b.items_skipped) for b in results) == [
        ("done", 0, 300), ("done", 300, 0)]
    assert Item.objects.filter(project=project).count() == 300


def test_items_committed_between_the_passes_are_not_duplicated(project, tmp_path, monkeypatch):
    # given: while import A is between its passes, import B of the same file finishes first
    from annotation.importing import service

    lines = [json.dumps({"id": f"r-{n}", "prompt": f"p {n}", "responses": ["a", "b"]}).encode() for n in range(20)]
    path = _write(tmp_path, "same.jsonl", lines)
    inner: list[ImportBatch] = []
    if service.commits_per_chunk():
        # SQLite: pass 2 runs under a per-project file lock (not reentrant), so B runs just before
        # A takes it, i.e. after A's pass 1
        original_lock = service._project_import_lock

        @contextlib.contextmanager
        def lock_after_b(project_id):
            monkeypatch.setattr(service, "_project_import_lock", original_lock)
            inner.append(import_file(project=project, path=path, source_name="same.jsonl"))
            with original_lock(project_id):
                yield

        monkeypatch.setattr(service, "_project_import_lock", lock_after_b)
    else:
        # PostgreSQL: B runs on the same connection under A's project row lock, before A catches up
        original = service._Known.catch_up

        def catch_up_after_b(self):
            monkeypatch.setattr(service._Known, "catch_up", original)
            inner.append(import_file(project=project, path=path, source_name="same.jsonl"))
            original(self)

        monkeypatch.setattr(service._Known, "catch_up", catch_up_after_b)
    # when
    outer = import_file(project=project, path=path, source_name="same.jsonl")
    # then: B stored the items, A skipped every one of them
    assert (inner[0].status, inner[0].items_created) == ("done", 20)
    assert (outer.status, outer.items_created, outer.items_skipped) == ("done", 0, 20)
    assert Item.objects.filter(project=project).count() == 20


def test_a_deeply_nested_record_is_an_error_of_its_line_and_the_rest_is_still_checked(project, tmp_path):
    """Hardening 6: it used to abort the whole file with "internal error: Recursion limit reached"."""
    nested: object = "leaf"
    for _ in range(300):
        nested = {"n": nested}
    deep = json.dumps({"prompt": "q", "responses": ["a"], "metadata": nested}).encode()
    bad = json.dumps({"prompt": "", "responses": ["a"]}).encode()
    batch = import_file(project=project, path=_write(tmp_path, "deep.jsonl", [GOOD, deep, bad]),
                        source_name="deep.jsonl", fmt="tribunal")
    assert_failed_and_empty(batch, project)
    assert [(e["line"], e["error"]) for e in batch.errors] == [
        (2, "the record is nested more than 64 levels deep"), (3, "missing prompt"),
    ]


def _gz(tmp_path, name: str, lines: int):
    import gzip

    path = tmp_path / name
    with gzip.open(path, "wb") as fh:
        for i in range(lines):
            fh.write(json.dumps({"id": f"z-{i}", "prompt": "same prompt " * 20 + str(i), "responses": ["same " * 40]}).encode() + b"\n")
    return path


def test_a_small_gzip_that_unpacks_past_the_threshold_runs_in_the_background(project, tmp_path, settings,
                                                                            django_capture_on_commit_callbacks):
    """Hardening 2: the decision is made on the unpacked size, never on the packed one."""
    path = _gz(tmp_path, "many.jsonl.gz", 5000)  # ~2.7 MB unpacked, a few dozen kB packed
    assert path.stat().st_size < 200_000
    settings.IMPORT_BACKGROUND_THRESHOLD = 1_000_000
    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    with django_capture_on_commit_callbacks(execute=False):
        batch = import_file(project=project, path=path, source_name="many.jsonl.gz", fmt="tribunal")
    assert (batch.status, batch.background) == (ImportBatch.Status.PENDING, True)
    assert stored(project) == NOTHING


def test_a_gzip_that_unpacks_too_far_is_refused_with_its_reason(project, tmp_path, settings, monkeypatch):
    path = _gz(tmp_path, "bomb.jsonl.gz", 3000)
    settings.IMPORT_MAX_UNPACKED_BYTES = 100_000
    batch = import_file(project=project, path=path, source_name="bomb.jsonl.gz", fmt="tribunal", background=False)
    assert_failed_and_empty(batch, project)
    assert "unpacks to more than 100000 bytes" in batch.errors[-1]["error"]

    # and by its ratio, once past the floor (lowered here so the test file can stay small)
    from annotation.importing import reader

    settings.IMPORT_MAX_UNPACKED_BYTES = 10**10
    settings.IMPORT_MAX_GZIP_RATIO = 5
    monkeypatch.setattr(reader, "RATIO_FLOOR_BYTES", 50_000)
    batch = import_file(project=project, path=path, source_name="bomb2.jsonl.gz", fmt="tribunal", background=False)
    assert_failed_and_empty(batch, project)
    assert "more than 5 times its packed size" in batch.errors[-1]["error"]


@pytest.mark.parametrize(
    "mode,responses,error",
    [
        ("pairwise", 3, "a pairwise project compares exactly two responses and this item has 3: split it into pairs"),
        ("pairwise", 1, "a pairwise project compares exactly two responses and this item has 1"),
        ("ranking", 1, "a ranking project needs at least two responses to compare and this item has 1"),
    ],
)
def test_items_the_project_mode_cannot_judge_are_rejected_by_line(project, researcher, tmp_path, mode, responses, error):
    # given: a project of this mode and a file whose second line has the wrong number of responses
    project.mode = mode
    project.save(update_fields=["mode"])
    good = json.dumps({"id": "ok", "prompt": "fine", "responses": ["one", "two"]}).encode()
    bad = json.dumps({"id": "bad", "prompt": "q", "responses": [f"r{n}" for n in range(responses)]}).encode()
    # when
    batch = import_file(project=project, path=_write(tmp_path, "mode.jsonl", [good, bad]), source_name="mode.jsonl", user=researcher)
    # then: the line and the reason, and nothing stored
    assert batch.status == ImportBatch.Status.FAILED
    assert [e["line"] for e in batch.errors] == [2] and batch.errors[0]["error"].startswith(error)
    assert batch.errors[0]["line"] == 2 and not Item.objects.filter(project=project).exists()


@pytest.mark.parametrize("mode", ["safety", "ranking_safety"])
def test_a_lone_response_is_fine_where_safety_labels_it(project, researcher, tmp_path, mode):
    project.mode = mode
    project.save(update_fields=["mode"])
    batch = import_file(project=project, path=_write(tmp_path, "one.jsonl", [GOOD]), source_name="one.jsonl", user=researcher)
    assert batch.status == ImportBatch.Status.DONE and Item.objects.filter(project=project).count() == 1
