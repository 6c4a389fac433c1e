"""Imports of the real data sets in ../shared/data, checked against independent reads of the raw files."""
from __future__ import annotations

import csv
import gzip
import json

import pytest

from annotation.importing import import_file
from annotation.models import Annotation, ImportBatch, Item, Response, ResponseSafety
from tests.conftest import shared_data

pytestmark = pytest.mark.django_db


def test_hh_rlhf_harmless_test_split(project):
    path = shared_data("hh-rlhf/harmless-base-test.jsonl.gz")
    rows = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    # when
    batch = import_file(project=project, path=path, source_name=path.name)
    # then: 2,312 items with 2 responses each and 2,312 imported preferences
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert batch.detected_format == "hh-rlhf"
    assert (batch.records_read, batch.items_created, batch.responses_created, batch.annotations_created) == (
        2312, 2312, 4624, 2312)
    items = Item.objects.filter(project=project)
    assert items.count() == 2312
    assert not Response.objects.filter(item__project=project).exclude(position__in=[0, 1]).exists()
    prefs = Annotation.objects.filter(project=project, source="import", source_detail="hh-rlhf")
    assert prefs.count() == 2312
    # HH-RLHF states no strength: none is invented
    assert set(prefs.values_list("pair_choice", "pair_strength")) == {("a", None)}

    # each item against its own raw line: chosen = response 0 = pair_a, rejected = response 1
    responses = {(r.item_id, r.position): r for r in Response.objects.filter(item__project=project)}
    pairs = {a.item_id: (a.pair_a_id, a.pair_b_id) for a in prefs}
    for item in items:
        row = rows[item.source_line - 1]
        chosen, rejected = responses[item.pk, 0], responses[item.pk, 1]
        assert pairs[item.pk] == (chosen.pk, rejected.pk)
        assert row["chosen"].rstrip().endswith(chosen.text) and row["rejected"].rstrip().endswith(rejected.text)
        # the prompt is the shared conversation: both transcripts start with it, turn by turn
        last_human = [m for m in item.prompt if m["role"] == "user"][-1]["content"]
        cut = len(row["chosen"]) - len(row["chosen"].rstrip()) + len(chosen.text)
        assert last_human in row["chosen"][: len(row["chosen"]) - cut]
        assert item.prompt[0]["role"] == "user"

    first = items.get(source_line=1)
    assert first.prompt[-1] == {"role": "user", "content": "okay some of these do not have anything to do with pens"}
    assert len(first.prompt) == 5


def _ranked_groups(path):
    """Independent walk: {prompter message_id: (depth, prompter text, [reply texts grouped by rank])}."""
    groups = {}

    def visit(message, depth):
        replies = message.get("replies") or []
        ranked = [r for r in replies if r["role"] == "assistant" and r.get("rank") is not None and not r.get("deleted")]
        if message["role"] == "prompter" and len(ranked) >= 2:
            by_rank = {}
            for reply in ranked:
                by_rank.setdefault(reply["rank"], set()).add(reply["text"])
            groups[message["message_id"]] = (depth, message["text"], [by_rank[k] for k in sorted(by_rank)])
        for reply in replies:
            visit(reply, depth + 1)

    with open(path, encoding="utf-8") as fh:
        for line in fh:
            visit(json.loads(line)["prompt"], 1)
    return groups


def test_oasst_trees_one_item_per_ranked_sibling_group(project):
    path = shared_data("oasst-en100/en_100_tree.jsonl")
    expected = _ranked_groups(path)
    # when
    batch = import_file(project=project, path=path, source_name=path.name)
    # then
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert batch.detected_format == "oasst"
    assert batch.records_read == 100
    assert batch.items_created == len(expected) == Item.objects.filter(project=project).count()
    assert batch.annotations_created == len(expected)
    texts = dict(Response.objects.filter(item__project=project).values_list("pk", "text"))
    for item in Item.objects.filter(project=project).prefetch_related("annotations"):
        depth, prompter_text, order = expected[item.external_id]
        assert len(item.prompt) == depth and item.prompt[-1] == {"role": "user", "content": prompter_text}
        (ranking,) = [a.ranking for a in item.annotations.all()]
        assert [{texts[pk] for pk in group} for group in ranking] == order
        assert item.responses.count() == sum(len(g) for g in order)


def test_aegis_subset_unsafe_prompts_with_safe_replies(project):
    path = shared_data("aegis2-subset/aegis2_900_unsafe_prompt_safe_response.csv")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    unique = {(r["prompt"], r["instruct_response"]) for r in rows}
    codes = {c.name.lower(): c.code for c in project.taxonomy_version.categories.all()}
    for c in project.taxonomy_version.categories.all():
        for alias in c.aliases:
            codes[alias.lower()] = c.code
    # when
    batch = import_file(project=project, path=path, source_name=path.name)
    # then: exact duplicate rows of the file are skipped, everything else imported
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert batch.detected_format == "aegis"
    assert (batch.records_read, batch.items_created, batch.items_skipped) == (900, len(unique), 900 - len(unique))
    anns = Annotation.objects.filter(project=project, source_detail="aegis").select_related("item")
    assert anns.count() == len(unique)
    by_first_line = {}
    for row in rows:
        by_first_line.setdefault((row["prompt"], row["instruct_response"]), row)
    for ann in anns:
        row = by_first_line[(ann.item.prompt[0]["content"], ann.item.responses.get().text)]
        assert ann.prompt_label == "unsafe" and ann.prompt_categories == [codes[row["category"].lower()]]
        assert ann.item.metadata["aegis_id"] == row["id"]
    assert set(ResponseSafety.objects.filter(annotation__project=project).values_list("label", flat=True)) == {"safe"}
    # both spellings map: the file uses the guard-prompt spelling of S4 and S7
    assert anns.filter(prompt_categories=["S4"]).exists() and anns.filter(prompt_categories=["S7"]).exists()
