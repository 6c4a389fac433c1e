"""Several raters in one import: the own format's ``annotations`` list and ``csv-raters`` (a CSV with
one label column per rater, read through a column mapping). Each rater's label becomes its own
imported annotation carrying the rater's id; importing again stores nothing twice; bad input names
the line and stores nothing. External check: HateCheck's 10-annotator file gives Fleiss' kappa
~0.94 when read back from the database, the same value as computed straight from the CSV."""
from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from annotation import services
from annotation.importing import import_batch_run, import_file
from annotation.judgments import Judgment
from annotation.models import Annotation, ImportBatch, Item, Project, ResponseSafety
from tests.annotation.import_helpers import assert_failed_and_empty, stored

pytestmark = pytest.mark.django_db

HATECHECK = Path(__file__).resolve().parents[3] / "shared" / "data" / "hatecheck" / "test_suite_annotations.csv"


def _jsonl(tmp_path, name: str, objects: list[dict]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(o) + "\n" for o in objects))
    return path


def _import(project, path: Path, **kwargs) -> ImportBatch:
    return import_file(project=project, path=path, source_name=path.name, **kwargs)


def _raters(project) -> dict[tuple[str, str], str]:
    """(item external id, rater) -> prompt label of every named rater's imported annotation."""
    rows = Annotation.objects.filter(project=project).exclude(rater="").values_list(
        "item__external_id", "rater", "prompt_label", "source"
    )
    assert {source for *_, source in rows} <= {"import"}
    return {(eid, rater): label for eid, rater, label, _source in rows}


def _assert_failed(batch: ImportBatch, project, expected: list[tuple[int, str]]) -> None:
    assert_failed_and_empty(batch, project)
    got = [(e["line"], e["error"]) for e in batch.errors]
    assert len(got) == len(expected), got
    for (line, error), (want_line, want_text) in zip(got, expected):
        assert line == want_line and want_text in error, (line, error)


# --- The own format: "annotations": [{"rater": ..., ...}] ----------------------------------------------


OWN = [
    {"id": "q-1", "prompt": "How do I pick a lock?", "responses": ["Use a tension wrench...", "I can't help."],
     "safety": {"prompt_label": "needs_caution"},  # the single form, without a rater id, still works
     "annotations": [
         {"rater": "r1", "label": "unsafe", "categories": ["Criminal Planning/Confessions"],
          "responses": [{"label": "unsafe", "categories": ["Criminal Planning/Confessions"]}, {"label": "safe"}]},
         {"rater": "r2", "label": "needs caution", "ranking": [[1], [0]]},
         {"rater": 7, "preference": {"a": 0, "b": 1, "choice": "b", "strength": 3}},
     ]},
    {"id": "q-2", "prompt": "Name a prime.", "responses": ["7"],
     "annotations": [{"rater": "r1", "label": "safe"}, {"rater": "r2", "label": "safe"}]},
    {"id": "q-3", "prompt": "No labels here.", "responses": ["fine"]},
]


def test_own_format_stores_one_annotation_per_rater_with_its_id(project, tmp_path):
    # when
    batch = _import(project, _jsonl(tmp_path, "raters.jsonl", OWN))
    # then one item per line; the unnamed label plus five named raters' annotations
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert (batch.items_created, batch.annotations_created) == (3, 6)
    assert _raters(project) == {("q-1", "r1"): "unsafe", ("q-1", "r2"): "needs_caution", ("q-1", "7"): "",
                                ("q-2", "r1"): "safe", ("q-2", "r2"): "safe"}
    item = Item.objects.get(project=project, external_id="q-1")
    first, second = item.responses.order_by("position")
    r1 = Annotation.objects.get(item=item, rater="r1")
    assert r1.prompt_categories == ["S3"] and r1.import_batch_id == batch.pk and r1.annotator_id is None
    assert {(s.response_id, s.label, tuple(s.categories)) for s in r1.response_safety.all()} == {
        (first.pk, "unsafe", ("S3",)), (second.pk, "safe", ())}
    assert Annotation.objects.get(item=item, rater="r2").ranking == [[second.pk], [first.pk]]
    pref = Annotation.objects.get(item=item, rater="7")
    assert (pref.pair_a_id, pref.pair_b_id, pref.pair_choice, pref.pair_strength) == (first.pk, second.pk, "b", 3)
    unnamed = Annotation.objects.get(item=item, rater="")
    assert unnamed.prompt_label == "needs_caution" and unnamed.source == "import"


def test_importing_the_same_file_again_stores_nothing_twice(project, tmp_path):
    path = _jsonl(tmp_path, "raters.jsonl", OWN)
    assert _import(project, path).status == ImportBatch.Status.DONE
    before = stored(project)
    # when
    again = _import(project, path)
    # then
    assert again.status == ImportBatch.Status.DONE, again.errors
    assert (again.items_created, again.items_skipped, again.annotations_created) == (0, 3, 0)
    assert stored(project) == before


def test_a_later_file_adds_new_raters_to_items_already_there(project, tmp_path):
    assert _import(project, _jsonl(tmp_path, "first.jsonl", OWN)).status == ImportBatch.Status.DONE
    before = stored(project)
    later = [
        # r1 again with the same label (skipped), r3 new on q-2
        {"id": "q-2", "prompt": "Name a prime.", "responses": ["7"],
         "annotations": [{"rater": "r1", "label": "safe"}, {"rater": "r3", "label": "unsafe"}]},
        # the same item twice in one file (one line per rater): r4 once, then r4 again identical
        {"id": "q-3", "prompt": "No labels here.", "responses": ["fine"],
         "annotations": [{"rater": "r4", "responses": [{"label": "safe"}]}]},
        {"id": "q-3", "prompt": "No labels here.", "responses": ["fine"],
         "annotations": [{"rater": "r4", "responses": [{"label": "safe"}]}, {"rater": "r5", "label": "safe"}]},
    ]
    # when
    batch = _import(project, _jsonl(tmp_path, "later.jsonl", later))
    # then three annotations, no new item
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert (batch.items_created, batch.items_skipped, batch.annotations_created) == (0, 3, 3)
    assert stored(project)["items"] == before["items"]
    assert stored(project)["annotations"] == before["annotations"] + 3
    raters = _raters(project)
    assert raters[("q-2", "r3")] == "unsafe" and raters[("q-3", "r5")] == "safe"
    q3 = Annotation.objects.get(item__external_id="q-3", rater="r4")
    assert [s.label for s in ResponseSafety.objects.filter(annotation=q3)] == ["safe"]
    assert q3.import_batch_id == batch.pk


def test_a_rater_with_a_different_label_for_a_stored_item_is_an_error(project, tmp_path):
    assert _import(project, _jsonl(tmp_path, "first.jsonl", OWN)).status == ImportBatch.Status.DONE
    before = stored(project)
    changed = [
        {"id": "q-3", "prompt": "No labels here.", "responses": ["fine"],
         "annotations": [{"rater": "r9", "label": "safe"}]},
        {"id": "q-2", "prompt": "Name a prime.", "responses": ["7"], "annotations": [{"rater": "r2", "label": "unsafe"}]},
    ]
    # when
    batch = _import(project, _jsonl(tmp_path, "changed.jsonl", changed))
    # then line 2 is named and not even r9 (line 1, fine) is stored
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED
    assert [(e["line"], e["error"]) for e in batch.errors] == [
        (2, "rater 'r2' already has a different label for this item (from an earlier import); "
            "an imported label is not replaced")]
    assert stored(project) == before


BAD_RATERS = {
    "an entry without a rater id": (
        [{"label": "safe"}], "annotations[0] has no rater id"),
    "a blank rater id": (
        [{"rater": " ", "label": "safe"}], "annotations[0] has no rater id"),
    "an unknown label": (
        [{"rater": "r1", "label": "safe"}, {"rater": "r2", "label": "dodgy"}],
        "annotations[1] (rater 'r2'): label must be safe, needs_caution or unsafe, got 'dodgy'"),
    "two entries for one rater": (
        [{"rater": "r1", "label": "safe"}, {"rater": "r1", "label": "unsafe"}],
        "annotations[1]: rater 'r1' has two entries for this item"),
    "a misspelt key": (
        [{"rater": "r1", "lable": "safe"}], "annotations[0] (rater 'r1') has unknown key(s) 'lable'"),
    "an entry with no judgment": (
        [{"rater": "r1"}], "annotations[0] (rater 'r1') has no judgment"),
    "an unknown category": (
        [{"rater": "r1", "label": "unsafe", "categories": ["Jaywalking"]}],
        "annotations[0] (rater 'r1'): unknown category 'Jaywalking'"),
    "a ranking that misses a response": (
        [{"rater": "r1", "ranking": [[0]]}], "annotations[0] (rater 'r1'): ranking does not place response(s) 1"),
    "not a list": ({"rater": "r1", "label": "safe"}, "annotations must be a list"),
}


@pytest.mark.parametrize("case", list(BAD_RATERS), ids=list(BAD_RATERS))
def test_a_bad_rater_entry_names_its_line_and_nothing_is_stored(project, tmp_path, case):
    annotations, reason = BAD_RATERS[case]
    lines = [
        {"prompt": "fine one", "responses": ["a", "b"], "annotations": [{"rater": "r1", "label": "safe"}]},
        {"prompt": "bad one", "responses": ["a", "b"], "annotations": annotations},
    ]
    # when
    batch = _import(project, _jsonl(tmp_path, "bad.jsonl", lines))
    # then
    _assert_failed(batch, project, [(2, reason)])


def test_one_rater_with_two_labels_for_one_item_in_one_file_is_an_error(project, tmp_path):
    lines = [
        {"prompt": "same", "responses": ["x"], "annotations": [{"rater": "r1", "label": "safe"}]},
        {"prompt": "same", "responses": ["x"], "annotations": [{"rater": "r1", "label": "unsafe"}]},
    ]
    batch = _import(project, _jsonl(tmp_path, "twice.jsonl", lines))
    _assert_failed(batch, project, [(2, "rater 'r1' already has a different label for this item "
                                         "(from an earlier line of this file)")])


def test_the_own_csv_takes_an_annotations_column(project, tmp_path):
    path = tmp_path / "raters.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "prompt", "responses", "annotations"])
        writer.writerow(["c-1", "Is this fine?", json.dumps(["yes"]),
                         json.dumps([{"rater": "a", "label": "safe"}, {"rater": "b", "label": "unsafe"}])])
    batch = _import(project, path)
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert batch.detected_format == "csv"
    assert _raters(project) == {("c-1", "a"): "safe", ("c-1", "b"): "unsafe"}


# --- csv-raters: one label column per rater, through a mapping -----------------------------------------


WIDE_CSV = """\
case,text,reply,ann_a,ann_b,ann_c,note
w-1,You people are vermin.,,hateful,hateful,,slur
w-2,I love my neighbours.,,non-hateful,,Non-Hateful,kind
w-3,Nobody rated this.,,,,,
"""
WIDE_MAPPING = {
    "prompt": "text", "id": "case",
    "raters": {"ann_a": "a", "ann_b": "b", "ann_c": "c"},
    "labels": {"hateful": {"label": "unsafe", "categories": ["Hate/Identity Hate"]}, "non-hateful": "safe"},
    "metadata": ["note"],
}


def _csv(tmp_path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_raters_reads_one_label_column_per_rater(project, tmp_path):
    # when (auto: a mapping means csv-raters)
    batch = _import(project, _csv(tmp_path, "wide.csv", WIDE_CSV), options={"mapping": WIDE_MAPPING})
    # then empty cells are raters who did not rate the case
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert (batch.detected_format, batch.requested_format) == ("csv-raters", "csv-raters")
    assert batch.options == {"mapping": WIDE_MAPPING}
    assert (batch.items_created, batch.responses_created, batch.annotations_created) == (3, 0, 4)
    assert _raters(project) == {("w-1", "a"): "unsafe", ("w-1", "b"): "unsafe",
                                ("w-2", "a"): "safe", ("w-2", "c"): "safe"}
    w1 = Item.objects.get(project=project, external_id="w-1")
    assert w1.prompt == [{"role": "user", "content": "You people are vermin."}] and w1.metadata == {"note": "slur"}
    assert list(Annotation.objects.filter(item=w1).values_list("prompt_categories", flat=True)) == [["S8"], ["S8"]]
    # and again: nothing twice
    again = _import(project, _csv(tmp_path, "wide.csv", WIDE_CSV), options={"mapping": WIDE_MAPPING})
    assert (again.status, again.items_skipped, again.annotations_created) == (ImportBatch.Status.DONE, 3, 0)


def test_a_background_csv_raters_import_keeps_its_mapping_for_the_worker(project, tmp_path):
    # given a batch queued for the worker (its file copied aside, the mapping stored on the batch)
    batch = _import(project, _csv(tmp_path, "wide.csv", WIDE_CSV), options={"mapping": WIDE_MAPPING},
                    background=True)
    assert batch.status == ImportBatch.Status.PENDING and not Item.objects.filter(project=project).exists()
    # when the worker runs it
    import_batch_run(batch_id=batch.pk)
    # then
    batch.refresh_from_db()
    assert (batch.status, batch.annotations_created) == (ImportBatch.Status.DONE, 4), batch.errors
    assert len(_raters(project)) == 4


def test_csv_raters_labels_a_response_column_and_defaults_to_safety_labels(project, tmp_path):
    text = "prompt,answer,r1,r2\nq one,a one,safe,Needs Caution\nq two,a two,unsafe,\n"
    mapping = {"prompt": "prompt", "responses": ["answer"], "raters": ["r1", "r2"], "target": "response"}
    batch = _import(project, _csv(tmp_path, "resp.csv", text), options={"mapping": mapping})
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    labels = sorted(ResponseSafety.objects.filter(annotation__project=project).values_list(
        "annotation__rater", "response__text", "label"))
    assert labels == [("r1", "a one", "safe"), ("r1", "a two", "unsafe"), ("r2", "a one", "needs_caution")]
    assert set(Annotation.objects.filter(project=project).values_list("prompt_label", flat=True)) == {""}


def test_csv_raters_bad_cells_name_their_line(project, tmp_path):
    text = WIDE_CSV.replace("w-2,I love my neighbours.,,non-hateful", "w-2,I love my neighbours.,,nonhateful")
    batch = _import(project, _csv(tmp_path, "wide.csv", text), options={"mapping": WIDE_MAPPING})
    _assert_failed(batch, project, [(3, "column ann_a: unknown label 'nonhateful' (the mapping knows 'hateful', "
                                        "'non-hateful')")])


def test_csv_raters_missing_columns_are_named_once(project, tmp_path):
    batch = _import(project, _csv(tmp_path, "wide.csv", WIDE_CSV.replace("ann_c", "ann_z")),
                    options={"mapping": WIDE_MAPPING})
    _assert_failed(batch, project, [(1, "the CSV has no column(s) 'ann_c' named in the mapping")])


@pytest.mark.parametrize("mapping, fmt, reason", [
    ({"raters": ["x"]}, "auto", "the column mapping needs 'prompt'"),
    ({"prompt": "p"}, "auto", 'mapping "raters" must map each label column'),
    ({"prompt": "p", "raters": {"a": "r", "b": "r"}}, "auto", "two columns the same rater id"),
    ({"prompt": "p", "raters": ["a"], "labels": {"yes": "bad"}}, "auto", "must be safe, needs_caution or unsafe"),
    ({"prompt": "p", "raters": ["a"], "target": "response"}, "auto", "needs exactly one column"),
    ({"prompt": "p", "raters": ["a"], "colour": 1}, "auto", "unknown key(s) colour"),
    ({"prompt": "p", "raters": ["a"]}, "tribunal", "a column mapping is for the csv-raters format"),
    (None, "csv-raters", "needs a column mapping"),
])
def test_a_bad_mapping_is_refused_before_anything_is_recorded(project, tmp_path, mapping, fmt, reason):
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        _import(project, _csv(tmp_path, "wide.csv", WIDE_CSV), fmt=fmt, options={"mapping": mapping})
    assert not ImportBatch.objects.filter(project=project).exists()


def test_the_command_takes_a_mapping_file(project, tmp_path, capsys):
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(WIDE_MAPPING))
    call_command("import_items", str(_csv(tmp_path, "wide.csv", WIDE_CSV)), project=project.slug,
                 mapping=str(mapping))
    assert "4 imported annotations" in capsys.readouterr().out
    assert len(_raters(project)) == 4


def test_a_rater_id_is_for_imported_records_only_and_once_per_item(project, tmp_path):
    batch = _import(project, _csv(tmp_path, "wide.csv", WIDE_CSV), options={"mapping": WIDE_MAPPING})
    item = Item.objects.get(pk=Annotation.objects.get(import_batch=batch, rater="a", prompt_label="unsafe").item_id)
    project.mode = Project.Mode.SAFETY  # the judgment below is a prompt label only
    judgment = Judgment(prompt_label="safe")
    for source, rater in (("jury", "z"), ("import", "a")):  # a rater id on a jury record; "a" twice
        with pytest.raises(IntegrityError), transaction.atomic():
            services.judgment_record(project=project, item_id=item.pk, judgment=judgment, source=source,
                                     shown_order=[], rater=rater)
    made = services.judgment_record(project=project, item_id=item.pk, judgment=judgment, source="import",
                                    shown_order=[], rater="d")
    assert made.rater == "d"


# --- External check: HateCheck, 10 annotators, 5 per case -----------------------------------------------


def fleiss_kappa(counts: list[dict[str, int]]) -> float:
    """Fleiss' kappa from per-item category counts (every item rated by the same number of raters)."""
    n = sum(counts[0].values())
    assert n > 1 and all(sum(c.values()) == n for c in counts), "Fleiss' kappa needs the same raters per item"
    items = len(counts)
    totals: Counter[str] = Counter()
    for c in counts:
        totals.update(c)
    p_e = sum((t / (items * n)) ** 2 for t in totals.values())
    p_bar = sum((sum(v * v for v in c.values()) - n) / (n * (n - 1)) for c in counts) / items
    return (p_bar - p_e) / (1 - p_e)


def test_fleiss_kappa_on_hand_worked_cases():
    # perfect agreement on two categories; and a worked 3-item example:
    # counts (2,0), (1,1), (0,2) with n=2: P_i = 1, 0, 1 -> P_bar = 2/3; p = (1/2, 1/2) -> P_e = 1/2;
    # kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert fleiss_kappa([{"x": 3}, {"y": 3}]) == pytest.approx(1.0)
    assert fleiss_kappa([{"x": 2}, {"x": 1, "y": 1}, {"y": 2}]) == pytest.approx(1 / 3)


HATECHECK_MAPPING = {
    "prompt": "test_case", "id": "case_id",
    "raters": {f"label_{k}": f"hatecheck-{k}" for k in range(1, 11)},
    "labels": {"hateful": {"label": "unsafe", "categories": ["Hate/Identity Hate"]}, "non-hateful": "safe"},
    "metadata": ["functionality", "templ_id", "label_gold"],
}


@pytest.mark.skipif(not HATECHECK.is_file(), reason=f"HateCheck data not present at {HATECHECK} (../shared/data)")
def test_hatecheck_imported_per_annotator_gives_the_papers_fleiss_kappa(project):
    # expected, straight from the CSV: each case's labels from label_1..label_10 (empty = not rated)
    with open(HATECHECK, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    from_csv = [Counter(r[f"label_{k}"] for k in range(1, 11) if r[f"label_{k}"].strip()) for r in rows]
    expected = fleiss_kappa(from_csv)
    # when
    batch = import_file(project=project, path=HATECHECK, source_name=HATECHECK.name,
                        options={"mapping": HATECHECK_MAPPING})
    # then every case is an item and every non-empty cell one imported rater's annotation
    assert batch.status == ImportBatch.Status.DONE, batch.errors[:5]
    assert batch.items_created == len(rows) == 3728
    assert batch.annotations_created == sum(sum(c.values()) for c in from_csv) == 5 * 3728
    # read back: group by item and rater
    per_item: dict[int, dict[str, str]] = defaultdict(dict)
    for item_id, rater, label in Annotation.objects.filter(project=project, source="import").exclude(
        rater=""
    ).values_list("item_id", "rater", "prompt_label"):
        assert rater not in per_item[item_id]
        per_item[item_id][rater] = label
    assert len(per_item) == 3728 and {len(r) for r in per_item.values()} == {5}
    assert len({rater for r in per_item.values() for rater in r}) == 10
    from_db = fleiss_kappa([Counter(r.values()) for r in per_item.values()])
    assert from_db == pytest.approx(expected, abs=1e-12)
    assert 0.93 <= from_db <= 0.95  # the paper reports 0.93; the file gives 0.939
    # and importing it again stores nothing twice
    again = import_file(project=project, path=HATECHECK, source_name=HATECHECK.name,
                        options={"mapping": HATECHECK_MAPPING})
    assert (again.status, again.items_skipped, again.annotations_created) == (ImportBatch.Status.DONE, 3728, 0)


# --- The import page and the API take the mapping as JSON text ---------------------------------------


def test_the_import_page_takes_a_mapping_and_explains_it(client, researcher, project, tmp_path):
    client.force_login(researcher)
    page = client.get("/projects/demo/import/").content.decode()
    assert "Several raters per item" in page and 'name="mapping"' in page and "csv-raters" in page
    path = _csv(tmp_path, "wide.csv", WIDE_CSV)
    with path.open("rb") as fh:
        response = client.post("/projects/demo/import/", {"file": fh, "format": "auto",
                                                          "mapping": json.dumps(WIDE_MAPPING)})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert len(_raters(project)) == 4
    # a mapping that is not JSON, or lacks the prompt column, redisplays the form with the reason
    for text, reason in (("{nope", "Not valid JSON"), ('{"raters": ["a"]}', "The column mapping needs &#x27;prompt&#x27;")):
        with path.open("rb") as fh:
            bad = client.post("/projects/demo/import/", {"file": fh, "format": "auto", "mapping": text})
        assert bad.status_code == 400 and reason in bad.content.decode()
    assert ImportBatch.objects.filter(project=project).count() == 1


def test_the_api_takes_a_mapping(researcher, project, tmp_path):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(researcher)
    path = _csv(tmp_path, "wide.csv", WIDE_CSV)
    with path.open("rb") as fh:
        response = api.post("/api/projects/demo/imports/", {"file": fh, "format": "csv-raters",
                                                            "mapping": json.dumps(WIDE_MAPPING)}, format="multipart")
    assert response.status_code == 201, response.content
    assert (response.json()["detected_format"], response.json()["annotations_created"]) == ("csv-raters", 4)
    with path.open("rb") as fh:
        refused = api.post("/api/projects/demo/imports/", {"file": fh, "format": "csv-raters"}, format="multipart")
    assert refused.status_code == 400, refused.content
    assert "needs a column mapping" in json.dumps(refused.json())
    assert ImportBatch.objects.filter(project=project).count() == 1
