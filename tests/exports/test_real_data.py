"""Real data sets imported with the platform's importer, then exported; each result is checked
against the raw source file, parsed independently here."""
from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from annotation.importing import import_file
from annotation.models import HazardCategory, ImportBatch, Item
from exports import services
from exports.pipeline import run_export
from tests.conftest import shared_data

pytestmark = pytest.mark.django_db


def _import(project, path: Path) -> ImportBatch:
    batch = import_file(project=project, path=path, source_name=path.name, fmt="auto")
    assert batch.status == ImportBatch.Status.DONE, batch.errors[:5]
    return batch


def _export(project, out: Path, **options) -> tuple[dict, list[dict]]:
    opts = services.export_options_validate(project=project, raw=options)
    manifest = run_export(project=project, options=opts, out_dir=out)
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    return manifest, rows


# The four pairs of the harmless-base test split whose chosen transcript ends in an empty
# Assistant turn (``...\n\nAssistant: ``): their completion is the joining space alone, and they
# rebuild exactly like every other row (checked by name below so a change there shows).
HH_EMPTY_FINAL_TURN_LINES = (87, 517, 926, 1104)


def test_hh_rlhf_standard_dpo_rebuilds_every_source_transcript_exactly(project, tmp_path):
    # given
    path = shared_data("hh-rlhf/harmless-base-test.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        raw = [json.loads(line) for line in fh]
    _import(project, path)
    # when
    manifest, rows = _export(project, tmp_path / "hh", format="dpo", source="human-only")
    # then: one prompt form for every row, and prompt + completion is the source transcript
    assert len(raw) == 2312
    assert len(rows) == 2312 and manifest["counts"]["rows_total"] == 2312
    line_of = dict(Item.objects.filter(project=project).values_list("id", "source_line"))
    assert sorted(line_of[r["item_id"]] for r in rows) == list(range(1, 2313))
    by_line = {line_of[r["item_id"]]: r for r in rows}
    for line, row in by_line.items():
        source = raw[line - 1]
        assert row["prompt"].startswith("\n\nHuman: ") and row["prompt"].endswith("\n\nAssistant:")
        assert row["chosen"].startswith(" ") and row["rejected"].startswith(" ")
        assert row["prompt"] + row["chosen"] == source["chosen"], line
        assert row["prompt"] + row["rejected"] == source["rejected"], line
        assert row["label_source"] == "import"
    assert [line for line, row in sorted(by_line.items()) if row["chosen"] == " "] == list(HH_EMPTY_FINAL_TURN_LINES)
    assert manifest["counts"]["label_sources"] == {"import": 2312}


def test_oasst_pro_rows_follow_the_source_ranks(project, tmp_path):
    path = shared_data("oasst-en100/en_100_tree.jsonl")
    # independently: every prompter message with >= 2 ranked assistant replies, replies by rank
    expected: dict[str, list[tuple[int, str]]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            stack = [json.loads(line)["prompt"]]
            while stack:
                m = stack.pop()
                replies = [r for r in m.get("replies") or [] if not r.get("deleted")]
                ranked = [r for r in replies if r["role"] == "assistant" and r.get("rank") is not None]
                if m["role"] == "prompter" and len(ranked) >= 2:
                    expected[m["message_id"]] = sorted((r["rank"], r["text"]) for r in ranked)
                stack.extend(replies)
    _import(project, path)
    manifest, rows = _export(project, tmp_path / "pro", format="pro", tie_policy="position")
    external = dict(Item.objects.filter(project=project).values_list("id", "external_id"))
    assert len(rows) == len(expected) > 100
    for row in rows:
        want = expected[external[row["item_id"]]]
        assert row["suffix"] == [text for _, text in want] or _same_up_to_ties(row, want)
        assert row["reward"] == sorted(row["reward"], reverse=True)
        assert row["sft_index"] == 0 and len(row["prefix"]) == len(row["suffix"])
        assert row["prefix"][0][-1] == "<|assistant|>" and row["prefix"][0][0].startswith("<|prompter|>")


def _same_up_to_ties(row: dict, want: list[tuple[int, str]]) -> bool:
    """Equal source ranks may come out in either order; the rank sequence must still match."""
    rank_of: dict[str, list[int]] = {}
    for rank, text in want:
        rank_of.setdefault(text, []).append(rank)
    return [rank_of[t].pop(0) for t in row["suffix"]] == [r for r, _ in want]


def test_aegis_guard_export_round_trips_labels_and_categories(project, tmp_path):
    path = shared_data("aegis2-subset/aegis2_900_unsafe_prompt_safe_response.csv")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        raw = list(csv.DictReader(fh))
    batch = _import(project, path)
    by_name: dict[str, str] = {}
    for code, name, aliases in HazardCategory.objects.filter(version=project.taxonomy_version).values_list(
        "code", "name", "aliases"
    ):
        for spelling in [name, *aliases]:
            by_name[spelling.lower()] = code
    manifest, rows = _export(project, tmp_path / "aegis", format="guard-aegis")
    # identical (prompt, response) rows are stored once: 900 source rows, 799 distinct
    distinct = {(r["prompt"], r["instruct_response"]) for r in raw}
    assert len(rows) == batch.items_created == len(distinct) == 799
    source_by_pair = {(r["prompt"], r["instruct_response"]): r for r in raw}
    assert {(row["prompt"], row["response"]) for row in rows} == distinct
    ids_by_pair: dict[tuple[str, str], set[str]] = {}
    for r in raw:
        ids_by_pair.setdefault((r["prompt"], r["instruct_response"]), set()).add(r["id"])
    item_ids = set(Item.objects.filter(project=project).values_list("id", flat=True))
    for row in rows:
        source = source_by_pair[(row["prompt"], row["response"])]
        assert (row["prompt_label"], row["response_label"]) == ("unsafe", "safe")
        # the data's own spelling ("Guns and Illegal Weapons", "Sexual (minor)", ...), not the card's
        assert row["violated_categories"] == source["category"]
        assert by_name[row["violated_categories"].lower()] == by_name[source["category"].lower()]
        # the prompt label is Aegis's (human, per the card); the subset has no response label: the
        # importer assumed "safe", and the row says so
        assert (row["prompt_label_source"], row["response_label_source"]) == ("human", "assumed")
        # the upstream id; Tribunal's id in its own column
        assert row["id"] in ids_by_pair[(row["prompt"], row["response"])] and row["item_id"] in item_ids
    spellings = {row["violated_categories"] for row in rows}
    assert {"Guns and Illegal Weapons", "Controlled/Regulated Substances", "Sexual (minor)",
            "High Risk Gov Decision Making"} <= spellings


def test_hh_rlhf_standard_prompts_are_token_prefixes_of_prompt_plus_completion(project, tmp_path, chat_tokenizer):
    """What TRL's DPO, KTO and SFT check before warning "tokenized prompt is not a prefix": the
    tokens of the prompt alone start the tokens of prompt + completion, on every exported row."""
    # given
    _import(project, shared_data("hh-rlhf/harmless-base-test.jsonl.gz"))
    for fmt, completions in (("dpo", ("chosen", "rejected")), ("kto", ("completion",)), ("sft", ("completion",))):
        # when
        _, rows = _export(project, tmp_path / fmt, format=fmt, source="human-only")
        # then
        assert rows
        prompts = chat_tokenizer([row["prompt"] for row in rows])["input_ids"]
        for key in completions:
            fulls = chat_tokenizer([row["prompt"] + row[key] for row in rows])["input_ids"]
            bad = [row["item_id"] for row, p, f in zip(rows, prompts, fulls) if f[: len(p)] != p]
            # (the former form, a bare single-turn prompt and a completion without its space, fails 23 HH pairs)
            assert bad == [], (fmt, key, len(bad), bad[:5])
