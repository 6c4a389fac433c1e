"""Good files in every format: what they become, and that importing twice adds nothing."""
from __future__ import annotations

import json

import pytest

from annotation.importing import import_file
from annotation.models import Annotation, ImportBatch, Item, Response, ResponseSafety
from tests.annotation.import_helpers import FIXTURES, assert_failed_and_empty, stored

pytestmark = pytest.mark.django_db


def _import(project, name, **kwargs):
    return import_file(project=project, path=FIXTURES / name, source_name=name, **kwargs)


def test_it_imports_own_jsonl_with_judgments(project, researcher):
    # when
    batch = _import(project, "good_tribunal.jsonl", user=researcher)
    # then
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert batch.detected_format == "tribunal"
    assert (batch.records_read, batch.items_created, batch.items_skipped) == (5, 4, 1)
    assert (batch.responses_created, batch.annotations_created) == (2 + 3 + 2 + 1, 3)
    assert batch.created_by == researcher and len(batch.sha256) == 64

    egg = Item.objects.get(project=project, external_id="t-1")
    assert egg.prompt == [{"role": "user", "content": "How do I boil an egg?"}]
    assert egg.metadata == {"topic": "cooking"}
    assert (egg.source_file, egg.source_line, egg.import_batch) == ("good_tribunal.jsonl", 1, batch)
    a, b = egg.responses.order_by("position")
    pref = Annotation.objects.get(item=egg)
    assert (pref.source, pref.source_detail, pref.annotator) == ("import", "tribunal", None)
    assert (pref.pair_a_id, pref.pair_b_id, pref.pair_choice, pref.pair_strength) == (a.pk, b.pk, "a", 3)
    assert pref.import_batch == batch and pref.ranking is None and pref.prompt_label == ""

    chat = Item.objects.get(project=project, external_id="t-2")
    assert [m["role"] for m in chat.prompt] == ["system", "user", "assistant", "user"]
    rome, milan, rome_long = chat.responses.order_by("position")
    assert (rome.model_name, rome.metadata) == ("model-a", {"id": "r-a"})
    assert Annotation.objects.get(item=chat).ranking == [[rome.pk, rome_long.pk], [milan.pk]]

    lock = Item.objects.get(project=project, external_id="t-3")
    refusal, howto = lock.responses.order_by("position")
    safety = Annotation.objects.get(item=lock)
    assert safety.source_detail == "my-labellers"
    assert safety.taxonomy_version == project.taxonomy_version
    assert (safety.prompt_label, safety.prompt_categories) == ("unsafe", ["S3"])  # lower-case name → code
    assert safety.ranking == [[refusal.pk], [howto.pk]]
    labels = {rs.response_id: (rs.label, rs.categories) for rs in ResponseSafety.objects.filter(annotation=safety)}
    # codes, names and the guard-prompt alias all map to codes
    assert labels == {refusal.pk: ("safe", []), howto.pk: ("unsafe", ["S3", "S4"])}

    plain = Item.objects.get(project=project, external_id="")
    assert plain.source_line == 4  # line 7 is the same content again and was skipped
    assert not Annotation.objects.filter(item=plain).exists()


def test_importing_the_same_file_twice_adds_nothing(project):
    # given
    first = _import(project, "good_tribunal.jsonl")
    before = stored(project)
    # when
    second = _import(project, "good_tribunal.jsonl")
    # then
    assert second.status == ImportBatch.Status.DONE
    assert (second.items_created, second.items_skipped, second.responses_created, second.annotations_created) == (0, 5, 0, 0)
    assert stored(project) == before
    assert first.items_created == before["items"] == 4


def test_it_imports_csv_with_the_same_columns(project):
    batch = _import(project, "good_tribunal.csv")
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert batch.detected_format == "csv"
    assert (batch.items_created, batch.responses_created, batch.annotations_created) == (3, 5, 0)
    haiku = Item.objects.get(project=project, external_id="c-1")
    assert haiku.source_line == 2 and haiku.metadata == {"src": "csv"}
    assert haiku.prompt[0]["content"] == "Write a haiku about rain.\nMake it calm."  # a quoted cell over 2 lines
    assert haiku.responses.get(position=0).text.count("\n") == 2
    hi = Item.objects.get(project=project, external_id="c-2")
    assert hi.prompt == [{"role": "user", "content": "Hi"}]  # a JSON message list in the prompt cell
    assert list(hi.responses.values_list("model_name", flat=True)) == ["m1", "m2"]
    comma = Item.objects.get(project=project, external_id="")
    assert comma.prompt[0]["content"] == "A prompt, with a comma" and comma.source_line == 5


def test_it_imports_aegis_rows_as_safety_annotations(project):
    batch = _import(project, "aegis_rows.jsonl")
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert batch.detected_format == "aegis"
    # 5 rows: one REDACTED prompt is not distributed by NVIDIA and is skipped (counted)
    assert (batch.items_created, batch.items_skipped, batch.annotations_created) == (4, 1, 4)
    # Aegis ids repeat (a1 twice), so they are kept in metadata, not as external ids
    assert sorted(Item.objects.filter(project=project).values_list("metadata__aegis_id", flat=True)) == [
        "a1", "a1", "a3", "a5"]
    assert not Item.objects.filter(project=project).exclude(external_id="").exists()

    fake_id = Item.objects.get(project=project, source_line=1)
    ann = Annotation.objects.get(item=fake_id)
    assert (ann.source, ann.source_detail, ann.taxonomy_version) == ("import", "aegis", project.taxonomy_version)
    assert (ann.prompt_label, ann.prompt_categories) == ("unsafe", ["S16", "S3"])
    assert [(s.label, s.categories) for s in ann.response_safety.all()] == [("safe", [])]

    gun = Annotation.objects.get(item__source_line=2)
    # guard-prompt spelling "Guns and Illegal Weapons" = card spelling "Guns/Illegal Weapons" = S4
    assert gun.prompt_categories == ["S4"]
    assert [(s.label, s.categories) for s in gun.response_safety.all()] == [("unsafe", ["S4"])]

    pasta = Item.objects.get(project=project, source_line=3)
    assert pasta.responses.count() == 0  # prompt-only row
    assert Annotation.objects.get(item=pasta).prompt_label == "safe"

    rude = Annotation.objects.get(item__source_line=5)
    assert rude.prompt_categories == ["S10", "S12", "S7"]  # case-insensitive, alias "Sexual (minor)"


def test_aegis_names_are_unknown_under_another_taxonomy(other_project):
    # given a Llama Guard 3 project: Aegis category names are not its categories
    batch = _import(other_project, "aegis_rows.jsonl")
    # then
    assert_failed_and_empty(batch, other_project)
    assert batch.errors[0]["line"] == 1
    assert "unknown category 'Fraud/Deception', 'Criminal Planning/Confessions'" in batch.errors[0]["error"]
    assert "Llama Guard 3" in batch.errors[0]["error"]


@pytest.mark.parametrize(
    ("first_line", "name", "expected"),
    [
        ({"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant: b"}, "x.jsonl", "hh-rlhf"),
        ({"prompt": "p", "responses": ["r"]}, "x.jsonl", "tribunal"),
        ({"prompt": "p", "response": "r", "prompt_label": "safe"}, "x.json", "aegis"),
        ({"message_tree_id": "t", "prompt": {"message_id": "t", "role": "prompter", "text": "q", "replies": []}},
         "x.jsonl", "oasst"),
    ],
)
def test_auto_detects_the_format_from_the_first_record(project, tmp_path, first_line, name, expected):
    path = tmp_path / name
    path.write_text(json.dumps(first_line) + "\n")
    batch = import_file(project=project, path=path, source_name=name)
    assert batch.detected_format == expected


def test_an_undetectable_file_fails_with_a_reason(project, tmp_path):
    path = tmp_path / "mystery.jsonl"
    path.write_text('{"question": "?", "answer": "!"}\n')
    batch = import_file(project=project, path=path, source_name="mystery.jsonl")
    assert_failed_and_empty(batch, project)
    assert batch.errors[0]["line"] == 1 and "cannot detect the format" in batch.errors[0]["error"]


def test_an_explicit_format_wins_over_detection(project, tmp_path):
    # given an own-format line read as HH-RLHF: every line is then an error, nothing stored
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"prompt": "p", "responses": ["r"]}) + "\n")
    batch = import_file(project=project, path=path, source_name="data.jsonl", fmt="hh-rlhf")
    assert_failed_and_empty(batch, project)
    assert batch.errors == [{"line": 1, "error": "HH-RLHF rows need chosen and rejected transcripts (strings)"}]


def test_an_unknown_format_name_is_a_value_error(project):
    with pytest.raises(ValueError, match="unknown import format 'parquet'"):
        _import(project, "good_tribunal.jsonl", fmt="parquet")


def test_an_empty_file_fails(project, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    batch = import_file(project=project, path=path, source_name="empty.jsonl", fmt="tribunal")
    assert_failed_and_empty(batch, project)
    assert batch.errors == [{"line": 1, "error": "the file has no records"}]


def test_responses_keep_their_order_and_origin(project):
    _import(project, "good_tribunal.jsonl")
    for item in Item.objects.filter(project=project):
        positions = list(Response.objects.filter(item=item).values_list("position", flat=True))
        assert positions == list(range(len(positions)))
    assert set(Response.objects.values_list("origin", flat=True)) == {"imported"}
