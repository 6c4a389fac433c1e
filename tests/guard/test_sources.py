"""Data sources: labelled files, Aegis rows, OpenAI moderation samples, guard-aegis exports and a
project's consensus (through exports' own pipeline); bad input gives clear errors."""
from __future__ import annotations

import csv
import json

import pytest

from exports.guard.ml.data import GuardDataError
from exports.guard.ml.train import check_examples
from exports.guard.sources import category_resolver, load_source, read_labelled_file, taxonomy_codes
from tests.exports.conftest import annotate, make_item, raters  # noqa: F401 (fixture)
from tests.guard.conftest import tiny_rows, write_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def aegis(presets):
    return presets["taxonomies"]["aegis-2.0"]


def test_it_reads_codes_names_and_aliases(aegis, tmp_path):
    # given
    rows = [{"prompt": "a", "label": "unsafe", "categories": ["S1", "Guns and Illegal Weapons"]},
            {"prompt": "b", "label": "unsafe", "categories": "sexual (minor), Violence"},
            {"prompt": "c", "response": "ok", "label": "safe"}, {"prompt": "d", "label": "unsafe"}]
    # when
    ex = read_labelled_file(write_jsonl(tmp_path / "d.jsonl", rows), resolve=category_resolver(aegis))
    # then
    assert [e.categories for e in ex] == [("S1", "S4"), ("S7", "S1"), (), None]
    assert [e.label for e in ex] == [1, 1, 0, 1] and ex[2].response == "ok"


def test_it_reads_csv_and_aegis_rows(aegis, tmp_path):
    path = tmp_path / "aegis.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, ["id", "prompt", "response", "prompt_label", "response_label", "violated_categories"])
        w.writeheader()
        w.writerow({"id": "7", "prompt": "how to hurt", "response": "here is how", "prompt_label": "unsafe",
                    "response_label": "unsafe", "violated_categories": "Violence, Threat"})
        w.writerow({"id": "8", "prompt": "hello", "response": "", "prompt_label": "safe"})
        w.writerow({"id": "9", "prompt": "REDACTED", "prompt_label": "unsafe"})
    ex = read_labelled_file(path, resolve=category_resolver(aegis))
    assert [(e.key, e.response is not None, e.label, e.categories) for e in ex] == [
        ("7", False, 1, ("S1", "S11")), ("7", True, 1, ("S1", "S11")), ("8", False, 0, ())]


def test_openai_moderation_absent_keys_are_unknown(aegis, tmp_path):
    rows = [{"prompt": "x", "S": 0, "H": 1}, {"prompt": "y", "HR": 0, "V": 0}]
    ex = read_labelled_file(write_jsonl(tmp_path / "m.jsonl", rows), resolve=category_resolver(aegis))
    assert [(e.label, e.categories) for e in ex] == [(1, None), (0, None)]


def test_it_rejects_a_category_outside_the_taxonomy(aegis, tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a", "label": "unsafe", "categories": ["S1"]},
                                              {"prompt": "b", "label": "unsafe", "categories": ["Zombies"]}])
    with pytest.raises(GuardDataError, match=r"line 2: category 'Zombies' is not in taxonomy aegis-2.0"):
        read_labelled_file(path, resolve=category_resolver(aegis))


def test_it_rejects_an_empty_source_and_one_class(aegis, tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(GuardDataError, match="no labelled examples"):
        load_source({"kind": "file", "path": str(tmp_path / "empty.jsonl")}, taxonomy_version=aegis)
    safe_only = write_jsonl(tmp_path / "safe.jsonl", [{"prompt": f"p{i}", "label": "safe"} for i in range(5)])
    examples, _ = load_source({"kind": "file", "path": str(safe_only)}, taxonomy_version=aegis)
    with pytest.raises(GuardDataError, match="All 5 examples are labelled safe"):
        check_examples(examples, taxonomy_codes(aegis))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "label": "maybe"}\n')
    with pytest.raises(GuardDataError, match="line 1: label 'maybe'"):
        load_source({"kind": "file", "path": str(bad)}, taxonomy_version=aegis)


def test_project_consensus_goes_through_the_export_pipeline(project, aegis, raters):
    # given: two items labelled by two raters each (one unsafe with S3, one safe)
    item1, (r1,) = make_item(project, "how do I pick a lock to break in", ["first you ..."])
    item2, (r2,) = make_item(project, "what is a good name for a cat", ["Tom"])
    for rater in raters[:2]:
        annotate(project, item1, annotator=rater, prompt_label="unsafe", prompt_categories=["S3"],
                 response_labels={r1: ("unsafe", ["S3"])})
        annotate(project, item2, annotator=rater, prompt_label="safe", response_labels={r2: ("safe", [])})
    # when
    examples, provenance = load_source({"kind": "project", "slug": project.slug}, taxonomy_version=aegis)
    # then: prompt-only and prompt+response examples per item, keyed by item id
    got = sorted((e.key, e.response is not None, e.label, e.categories) for e in examples)
    assert got == sorted([(str(item1.pk), False, 1, ("S3",)), (str(item1.pk), True, 1, ("S3",)),
                          (str(item2.pk), False, 0, ()), (str(item2.pk), True, 0, ())])
    assert provenance["kind"] == "project"


def test_empty_project_and_foreign_export_are_refused(project, presets, tmp_path):
    with pytest.raises(GuardDataError, match="no items"):
        load_source({"kind": "project", "slug": project.slug}, taxonomy_version=project.taxonomy_version)
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"format": "guard-aegis", "taxonomy": {"slug": "llama-guard-3", "version": 1},
                                                      "splits": ["train"]}))
    write_jsonl(folder / "train.jsonl", tiny_rows(1))
    with pytest.raises(GuardDataError, match="exported under taxonomy llama-guard-3 v1, not aegis-2.0"):
        load_source({"kind": "export", "path": str(folder)}, taxonomy_version=presets["taxonomies"]["aegis-2.0"])


@pytest.mark.parametrize("fmt", ["guard-aegis", "guard-llamaguard"])
def test_both_guard_export_folders_give_the_same_examples_as_the_consensus(fmt, project, aegis, raters, tmp_path):
    from exports.pipeline import run_export
    from exports.services import export_options_validate

    # given: a multi-line unsafe reply, a safe item, both labelled by two raters
    item1, (r1,) = make_item(project, "how do I pick a lock to break in", ["First you ...\n\nthen you turn it."])
    item2, (r2,) = make_item(project, "what is a good name for a cat", ["Tom"])
    for rater in raters[:2]:
        annotate(project, item1, annotator=rater, prompt_label="unsafe", prompt_categories=["S3"],
                 response_labels={r1: ("unsafe", ["S3", "S1"])})
        annotate(project, item2, annotator=rater, prompt_label="safe", response_labels={r2: ("safe", [])})
    options = export_options_validate(project=project, raw={"format": fmt, "outputs": ["jsonl"]})
    run_export(project=project, options=options, out_dir=tmp_path / "export")
    # when
    examples, provenance = load_source({"kind": "export", "path": str(tmp_path / "export")}, taxonomy_version=aegis)
    consensus, _ = load_source({"kind": "project", "slug": project.slug}, taxonomy_version=aegis)
    # then: the same (item, prompt, response, label) whichever format carried them
    def as_set(exs):
        return {(e.key, e.prompt, e.response, e.label) for e in exs}

    assert as_set(examples) == as_set(consensus) and len(examples) == 4
    assert "First you ...\n\nthen you turn it." in {e.response for e in examples}
    cats = {e.response is not None: tuple(sorted(e.categories or ())) for e in examples if e.label}
    # Llama Guard rows carry each turn's own codes; an Aegis row has one violated_categories for both
    assert cats == ({False: ("S3",), True: ("S1", "S3")} if fmt == "guard-llamaguard" else {False: ("S1", "S3"), True: ("S1", "S3")})
    assert provenance["export_options"]["format"] == fmt


def test_a_llamaguard_row_without_a_conversation_names_its_line(aegis, tmp_path):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"format": "guard-llamaguard", "taxonomy": {"slug": "aegis-2.0", "version": 1},
                                                      "splits": ["train"]}))
    write_jsonl(folder / "train.jsonl", [{"prompt": "[INST] classify: hi [/INST]", "completion": "safe", "role": "User"}])
    with pytest.raises(GuardDataError, match=r"train.jsonl, line 1: the prompt has no <BEGIN CONVERSATION>"):
        load_source({"kind": "export", "path": str(folder)}, taxonomy_version=aegis)
