"""annotation.judgments: the rule functions every source shares, on literal inputs, and the one
declared leniency of imports."""
from __future__ import annotations

import json

import pytest

from annotation.importing import import_file
from annotation.importing.formats import tribunal
from annotation.judgments import (
    IMPORT_RULES,
    MACHINE_RULES,
    STRICT_RULES,
    JudgmentRules,
    category_problems,
    pair_strength_valid,
    ranking_gaps,
    rules_for,
    unlabelled_responses,
)
from annotation.models import Annotation, ImportBatch


def test_a_complete_weak_order_has_no_gaps():
    assert not ranking_gaps([[3], [1, 2]], [1, 2, 3])


def test_ranking_gaps_name_duplicated_missing_and_unknown_responses():
    gaps = ranking_gaps([[3, 3], [9]], [1, 2, 3])
    assert (gaps.duplicated, gaps.missing, gaps.unknown) == ([3], [1, 2], [9])
    assert gaps


@pytest.mark.parametrize(
    ("choice", "strength", "valid"),
    [("tie", 0, True), ("tie", None, True), ("tie", 2, False), ("tie", False, False),
     ("a", 1, True), ("b", 3, True), ("a", 0, False), ("a", 4, False), ("a", None, False), ("a", True, False)],
)
def test_pair_strength(choice, strength, valid):
    assert pair_strength_valid(choice, strength) is valid


def test_strict_rules_keep_categories_for_unsafe_and_may_require_one():
    assert category_problems("unsafe", ["S1"], rules=STRICT_RULES, project_requires=True) == []
    assert category_problems("safe", ["S1"], rules=STRICT_RULES, project_requires=True) == [
        "Categories apply only to a label of unsafe."
    ]
    assert category_problems("unsafe", [], rules=STRICT_RULES, project_requires=True) == [
        "Unsafe needs at least one category."
    ]
    assert category_problems("unsafe", [], rules=STRICT_RULES, project_requires=False) == []
    assert category_problems("unsafe", ["S1", "S1"], rules=STRICT_RULES, project_requires=False) == [
        "A category is listed twice."
    ]


def test_import_rules_allow_categories_on_any_label_but_not_twice():
    assert category_problems("needs_caution", ["S1"], rules=IMPORT_RULES, project_requires=True) == []
    assert category_problems("unsafe", [], rules=IMPORT_RULES, project_requires=True) == []
    assert category_problems("safe", ["S1", "S1"], rules=IMPORT_RULES, project_requires=True) == [
        "A category is listed twice."
    ]


def test_every_response_labelled_only_under_strict_rules():
    assert unlabelled_responses([1, 2, 3], {2}, rules=STRICT_RULES) == [1, 3]
    assert unlabelled_responses([1, 2, 3], {2}, rules=IMPORT_RULES) == []


def test_rules_by_source():
    assert rules_for(Annotation.Source.IMPORT) is IMPORT_RULES
    for source in (Annotation.Source.HUMAN, Annotation.Source.ADJUDICATION):
        assert rules_for(source) is STRICT_RULES
    assert rules_for(Annotation.Source.JURY) is MACHINE_RULES


def _import(project, tmp_path, records):
    path = tmp_path / "some.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return import_file(project=project, path=path, source_name="some.jsonl", fmt="tribunal")


CAUTION_WITH_CATEGORY = {
    "prompt": "p1", "responses": ["a", "b"],
    "safety": {"responses": [{"label": "needs_caution", "categories": ["S1"]}, {"label": "safe"}]},
}
PARTIAL = {"prompt": "p2", "responses": ["a", "b"], "safety": {"responses": [None, {"label": "safe"}]}}


def test_the_importer_takes_partial_labels_and_categories_on_caution(project, tmp_path):
    batch = _import(project, tmp_path, [CAUTION_WITH_CATEGORY, PARTIAL])
    assert (batch.status, batch.annotations_created) == (ImportBatch.Status.DONE, 2)


def test_the_importer_is_governed_by_the_shared_rules(project, tmp_path, monkeypatch):
    # given: imports held to the strict rules
    monkeypatch.setattr(tribunal, "RULES", JudgmentRules(True, True, False))
    # when
    batch = _import(project, tmp_path, [CAUTION_WITH_CATEGORY, PARTIAL])
    # then: both records are refused, each with its reason
    assert batch.status == ImportBatch.Status.FAILED
    assert [(e["line"], e["error"]) for e in batch.errors] == [
        (1, "safety categories of response 0: Categories apply only to a label of unsafe. For \"needs caution\", "
            "choose the label alone, without categories."),
        (2, "safety labels no response 0"),
    ]
