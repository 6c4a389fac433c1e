"""Issue 12, points 3-8, on the shared real data (HH-RLHF, oasst, the Aegis subset): margins only
from stated strength, no agreement figure for one rater, no group across splits, PRO ranking
lengths, provenance and licences, categories by name, the import summary and create_project.
Every expectation is computed here from the raw file, independently of the importer."""
from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.importing import import_file
from annotation.models import ImportBatch, Item, Project
from exports import services
from exports.grouping import groups_in_python, split_groups
from exports.pipeline import ExportEmptyError, run_export, split_of
from tests.conftest import shared_data

pytestmark = pytest.mark.django_db

HH = "hh-rlhf/harmless-base-test.jsonl.gz"
OASST = "oasst-en100/en_100_tree.jsonl"
AEGIS = "aegis2-subset/aegis2_900_unsafe_prompt_safe_response.csv"


def _import(project, path: Path) -> ImportBatch:
    batch = import_file(project=project, path=path, source_name=path.name, fmt="auto")
    assert batch.status == ImportBatch.Status.DONE, batch.errors[:5]
    return batch


def _export(project, out: Path, **options) -> tuple[dict, dict[str, list[dict]]]:
    opts = services.export_options_validate(project=project, raw=options)
    manifest = run_export(project=project, options=opts, out_dir=out)
    rows = {
        split: [json.loads(line) for line in (out / f"{split}.jsonl").read_text().splitlines()]
        for split in ("train", "validation", "test") if (out / f"{split}.jsonl").exists()
    }
    return manifest, rows


def _evidence(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "evidence.jsonl").read_text().splitlines()]


def _first_human_turn(transcript: str) -> str:
    """The first Human turn of an HH transcript, parsed here (not with the importer's code)."""
    head = transcript.split("\n\nHuman:", 1)[1]
    return head.split("\n\nAssistant:", 1)[0].strip()


def _hh_prompt(chosen: str, rejected: str) -> str:
    """The shared transcript up to the last shared Assistant cue: the exact prompt."""
    k = 0
    while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
        k += 1
    return chosen[: chosen.rfind("\n\nAssistant:", 0, k)]


def test_hh_rlhf_margins_agreement_splits_and_provenance(project, tmp_path):
    path = shared_data(HH)
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        raw = [json.loads(line) for line in fh]
    batch = _import(project, path)
    assert batch.skipped_detail == {"duplicates_in_file": 0, "already_in_project": 0, "ignored": 0}
    # when
    manifest, rows = _export(project, tmp_path / "hh", format="dpo", source="human-only", include_margin=True,
                             split="0.6,0.2,0.2", seed=3)
    all_rows = [r for split_rows in rows.values() for r in split_rows]
    assert len(all_rows) == 2312
    # 3. HH-RLHF states no strength: no margin is invented (RewardTrainer would start at 2.13, not 0.69)
    assert all(r["margin"] is None for r in all_rows)
    assert manifest["counts"]["margin_null_rows"] == 2312
    assert "null where the source states no strength" in manifest["consensus"]["margin"]
    # 4. one rater per pair: no agreement figure, counted apart
    agreement = manifest["counts"]["agreement"]
    assert agreement == {"items_with_figure": 0, "single_rater_items": 2312, "mean": None, "min": None}
    readme = (tmp_path / "hh" / "README.md").read_text()
    assert "single-rater items (no agreement figure, not in the mean): 2312" in readme
    assert all(e["preference"]["agreement"] is None for e in _evidence(tmp_path / "hh"))
    with pytest.raises(ExportEmptyError, match="min_agreement_single_rater: 2312"):
        _export(project, tmp_path / "hh-min", format="dpo", min_agreement=0.5)
    with pytest.raises(ExportEmptyError, match="min_annotators: 2312"):
        _export(project, tmp_path / "hh-min2", format="dpo", min_annotators=2)
    # 5. no first Human turn and no exact prompt in two splits (both recur in the source)
    line_of = dict(Item.objects.filter(project=project).values_list("id", "source_line"))
    first_turn_splits: dict[str, set[str]] = {}
    prompt_splits: dict[str, set[str]] = {}
    for split, split_rows in rows.items():
        for r in split_rows:
            source = raw[line_of[r["item_id"]] - 1]
            first_turn_splits.setdefault(_first_human_turn(source["chosen"]), set()).add(split)
            prompt_splits.setdefault(_hh_prompt(source["chosen"], source["rejected"]), set()).add(split)
    shared_first = Counter(_first_human_turn(r["chosen"]) for r in raw)
    assert sum(1 for n in shared_first.values() if n > 1) > 40  # the source does repeat first turns
    assert all(len(s) == 1 for s in first_turn_splits.values())
    assert all(len(s) == 1 for s in prompt_splits.values())
    assert len(rows) == 3 and sum(manifest["counts"]["groups_per_split"].values()) < 2312
    assert manifest["split"]["by"] == "group" and "first conversation turn" in manifest["split"]["grouping"]
    # the old per-item split would have leaked: the test can fail
    opts = services.export_options_validate(project=project, raw={"format": "dpo", "split": "0.6,0.2,0.2", "seed": 3})
    by_item: dict[str, set[str]] = {}
    for item_id, line in line_of.items():
        by_item.setdefault(_first_human_turn(raw[line - 1]["chosen"]), set()).add(split_of(item_id, opts))
    assert any(len(s) > 1 for s in by_item.values())
    # 7. provenance of every record, and the upstream licence in manifest and card
    for e in _evidence(tmp_path / "hh"):
        (record,) = e["records"]
        assert record["import"] == {"format": "hh-rlhf", "file": path.name, "line": line_of[e["item_id"]],
                                    "upstream_id": None}
    (hh,) = manifest["upstream"]
    assert (hh["dataset"], hh["licence"], hh["items"], hh["files"]) == ("Anthropic HH-RLHF", "MIT", 2312, [path.name])
    assert "| Anthropic HH-RLHF | MIT | 2312 |" in readme
    # 8. a second import of the same file: everything is "already in the project"
    again = _import(project, path)
    assert again.skipped_detail == {"duplicates_in_file": 0, "already_in_project": 2312, "ignored": 0}


def _oasst_expected(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """message id of every ranked prompter message -> its tree id, and -> its number of ranked replies."""
    tree_of: dict[str, str] = {}
    length_of: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            stack = [obj["prompt"]]
            while stack:
                m = stack.pop()
                replies = [r for r in m.get("replies") or [] if not r.get("deleted")]
                ranked = [r for r in replies if r["role"] == "assistant" and r.get("rank") is not None]
                if m["role"] == "prompter" and len(ranked) >= 2:
                    tree_of[m["message_id"]] = obj["message_tree_id"]
                    length_of[m["message_id"]] = len(ranked)
                stack.extend(replies)
    return tree_of, length_of


def test_oasst_trees_stay_in_one_split_and_pro_lengths(project, tmp_path):
    path = shared_data(OASST)
    tree_of, length_of = _oasst_expected(path)
    _import(project, path)
    external = dict(Item.objects.filter(project=project).values_list("id", "external_id"))
    # when
    manifest, rows = _export(project, tmp_path / "pro", format="pro", tie_policy="position",
                             split="0.5,0.25,0.25", seed=1)
    # 5. no tree in two splits
    tree_splits: dict[str, set[str]] = {}
    for split, split_rows in rows.items():
        for r in split_rows:
            tree_splits.setdefault(tree_of[external[r["item_id"]]], set()).add(split)
    assert len(tree_splits) > 50 and all(len(s) == 1 for s in tree_splits.values())
    assert len(rows) == 3
    # the database's grouping (PostgreSQL) is the same as the portable one
    stored = Item.objects.filter(project=project).values_list("id", "prompt", "metadata__oasst__message_tree_id")
    assert split_groups(project) == groups_in_python(stored) and len(set(split_groups(project).values())) > 50
    # 6. the length distribution, as the raw file gives it
    expected_lengths = Counter(length_of.values())
    assert manifest["counts"]["ranking_lengths"] == {str(k): v for k, v in sorted(expected_lengths.items())}
    readme = (tmp_path / "pro" / "README.md").read_text()
    assert "reads every file in its data folder" in readme and "ranking lengths" in readme
    n3, at_least3 = expected_lengths[3], sum(v for k, v in expected_lengths.items() if k >= 3)
    assert expected_lengths[2] > 0 and n3 < at_least3  # the file has 2s and more than 3s
    for policy, count, lengths in (("exactly", n3, {3}), ("at-least", at_least3, None), ("truncate", at_least3, {3})):
        m, got = _export(project, tmp_path / policy, format="pro", tie_policy="position", pro_length=3,
                         pro_length_policy=policy)
        sizes = {len(r["suffix"]) for r in got["train"]}
        assert len(got["train"]) == count and m["counts"]["items_dropped"]["pro_length"] == len(length_of) - count
        assert sizes == lengths if lengths else min(sizes) >= 3
        assert all(len(r["reward"]) == len(r["prefix"]) == len(r["suffix"]) for r in got["train"])
    with pytest.raises(Exception, match="pro_length applies to the pro format only"):
        services.export_options_validate(project=project, raw={"format": "dpo", "pro_length": 3})
    # 3. ranked items: margins from consensus positions on [0, 1]; best vs worst is 1
    m, dpo = _export(project, tmp_path / "dpo", format="dpo", tie_policy="position", include_margin=True)
    assert dpo["train"] and all(r["margin"] == 1.0 for r in dpo["train"])
    m, adjacent = _export(project, tmp_path / "adj", format="dpo", pair_policy="adjacent", include_margin=True)
    margins = {r["margin"] for r in adjacent["train"]}
    assert margins and all(0 < x <= 1 for x in margins) and len(margins) > 2
    # 7. upstream ids are the oasst message ids; licence Apache-2.0
    for e in _evidence(tmp_path / "pro"):
        (record,) = e["records"]
        assert record["import"]["format"] == "oasst" and record["import"]["upstream_id"] == external[e["item_id"]]
    (up,) = manifest["upstream"]
    assert (up["licence"], up["items"]) == ("Apache-2.0", len(rows["train"]) + len(rows["validation"]) + len(rows["test"]))


def test_aegis_categories_by_name_provenance_and_import_summary(project, tmp_path):
    path = shared_data(AEGIS)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        raw = list(csv.DictReader(fh))
    batch = _import(project, path)
    # 8. in-file duplicates are not "already present"
    distinct = {(r["prompt"], r["instruct_response"]) for r in raw}
    assert batch.skipped_detail == {"duplicates_in_file": len(raw) - len(distinct), "already_in_project": 0,
                                    "ignored": 0}
    # --categories: names and aliases as the importer reads them, same rows as the codes
    by_name, rows_by_name = _export(project, tmp_path / "names", format="guard-aegis",
                                    categories="violence, Sexual (minor),Guns and Illegal Weapons")
    by_code, rows_by_code = _export(project, tmp_path / "codes", format="guard-aegis", categories="S1,S7,S4")
    assert by_name["options"]["categories"] == ["S1", "S7", "S4"]
    assert rows_by_name == rows_by_code
    want = {r["prompt"] for r in raw if r["category"] in ("Violence", "Sexual (minor)", "Guns and Illegal Weapons")}
    assert {r["prompt"] for r in rows_by_name["train"]} == want
    with pytest.raises(Exception, match="Unknown category code"):
        services.export_options_validate(project=project, raw={"format": "guard-aegis", "categories": "Vampires"})
    # categories sort S1, S2 ... S10 (natural order)
    manifest, _ = _export(project, tmp_path / "all", format="guard-aegis")
    codes = list(manifest["counts"]["categories"])
    assert codes == sorted(codes, key=lambda c: int(c[1:])) and "S10" in codes and "S2" in codes
    # 7. provenance: the Aegis row id (first row of each distinct content) and the licence
    first_id: dict[tuple[str, str], str] = {}
    for r in raw:
        first_id.setdefault((r["prompt"], r["instruct_response"]), r["id"])
    items = {i.pk: i for i in Item.objects.filter(project=project).prefetch_related("responses")}
    for e in _evidence(tmp_path / "all"):
        item = items[e["item_id"]]
        key = (item.prompt[0]["content"], item.responses.all()[0].text)
        assert e["records"][0]["import"]["upstream_id"] == first_id[key]
        assert e["records"][0]["import"]["format"] == "aegis"
    (up,) = manifest["upstream"]
    assert up["licence"] == "CC-BY-4.0" and "NVIDIA" in up["attribution"]
    # REDACTED rows are counted as such (a copy of three real rows, one prompt redacted as NVIDIA does)
    redacted = tmp_path / "redacted.csv"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(raw[0]))
    writer.writeheader()
    for n, r in enumerate(raw[:3]):
        writer.writerow({**r, "prompt": "REDACTED"} if n == 0 else r)
    redacted.write_text(buffer.getvalue(), encoding="utf-8")
    again = _import(project, redacted)
    assert again.skipped_detail == {"duplicates_in_file": 0, "already_in_project": 2, "ignored": 1}


def test_create_project_command_and_import_summary(presets, researcher, tmp_path):
    out = io.StringIO()
    call_command("create_project", "hh-study", "--name", "HH study", "--taxonomy", "aegis-2.0",
                 "--mode", "safety", "--user", researcher.username, stdout=out)
    project = Project.objects.get(slug="hh-study")
    assert (project.name, project.mode, project.taxonomy_version.taxonomy.slug) == ("HH study", "safety", "aegis-2.0")
    assert project.memberships.filter(user=researcher, role="researcher").exists()
    assert "import_items FILE --project hh-study" in out.getvalue()
    with pytest.raises(CommandError, match="exists already"):
        call_command("create_project", "hh-study", "--name", "x", "--taxonomy", "aegis-2.0")
    with pytest.raises(CommandError, match="No published version of taxonomy 'nope'.*aegis-2.0"):
        call_command("create_project", "other", "--name", "x", "--taxonomy", "nope")
    path = shared_data(AEGIS)
    summary = io.StringIO()
    call_command("import_items", str(path), "--project", "hh-study", "--foreground", stdout=summary)
    assert "101 duplicates in the file, 0 already in the project, 0 ignored" in summary.getvalue()
