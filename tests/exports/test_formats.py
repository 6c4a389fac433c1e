"""Exports on hand-made annotations: every format, consumer checks (datasets + TRL with a real
chat template), determinism, filters, splits, bad options."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.utils import timezone

from annotation.models import Annotation
from exports import services
from exports.models import Export
from exports.options import ExportOptionsError, build_options
from exports.pipeline import run_export, split_of
from tests.exports.conftest import annotate, make_item

pytestmark = pytest.mark.django_db


def _run(project, tmp_path: Path, name: str = "out", **options) -> tuple[dict, Path]:
    opts = services.export_options_validate(project=project, raw=options)
    out = tmp_path / name
    return run_export(project=project, options=opts, out_dir=out), out


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def ranked(project, raters):
    """Three items with rankings by three raters, plus safety labels."""
    items = []
    # item 1: clear order a > b > c (two of three agree fully)
    item, (a, b, c) = make_item(project, "How do I bake bread?", ["Knead, proof, bake.", "Buy some.", "No."])
    annotate(project, item, annotator=raters[0], ranking=[[a], [b], [c]])
    annotate(project, item, annotator=raters[1], ranking=[[a], [b], [c]])
    annotate(project, item, annotator=raters[2], ranking=[[b], [a], [c]])
    items.append((item, (a, b, c)))
    # item 2: multi-turn prompt, b best, a and c tied last
    item, (a2, b2, c2) = make_item(
        project,
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a colour."}],
        ["Blue.", "Green, a calm colour.", "I can't."],
    )
    annotate(project, item, annotator=raters[0], ranking=[[b2], [a2, c2]])
    items.append((item, (a2, b2, c2)))
    # item 3: pairwise only, 2 votes for the second response
    item, (a3, b3) = make_item(project, "Is the sky blue?", ["No.", "Yes, on a clear day."])
    annotate(project, item, annotator=raters[0], pair=(a3, b3, "b", 3))
    annotate(project, item, annotator=raters[1], pair=(a3, b3, "b", 1))
    items.append((item, (a3, b3)))
    return items


def test_dpo_standard_best_vs_worst_rows_carry_item_and_source(project, ranked, tmp_path):
    manifest, out = _run(project, tmp_path, format="dpo", include_margin=True)
    rows = _rows(out / "train.jsonl")
    (i1, (a, b, c)), (i2, (a2, b2, c2)), (i3, (a3, b3)) = ranked
    # item 2's worst group is a tie (a2, c2): default tie policy "skip" leaves it out, counted
    assert [r["item_id"] for r in rows] == [i1.pk, i3.pk]
    assert manifest["counts"]["items_dropped"] == {"tie": 1}
    assert rows[0] == {
        "item_id": i1.pk, "prompt": "\n\nHuman: How do I bake bread?\n\nAssistant:", "chosen": " Knead, proof, bake.",
        "rejected": " No.",
        "margin": 1.0, "chosen_id": a.pk, "rejected_id": c.pk, "label_source": "human",
    }
    # pairwise item: majority with strength; margin = mean stated strength of the winning votes / 3
    assert rows[1]["chosen"] == " Yes, on a clear day." and rows[1]["margin"] == pytest.approx(2 / 3, abs=1e-6)
    assert "margin" in manifest["consensus"] and "[0, 1]" in manifest["consensus"]["margin"]


def test_dpo_pair_policies_and_tie_policies(project, ranked, tmp_path):
    (i1, (a, b, c)), (i2, (a2, b2, c2)), _ = ranked
    _, out = _run(project, tmp_path, "all", format="dpo", pair_policy="all-ordered-pairs")
    pairs = [(r["chosen_id"], r["rejected_id"]) for r in _rows(out / "train.jsonl") if r["item_id"] in (i1.pk, i2.pk)]
    # all ordered pairs: never between tied responses (a2, c2)
    assert pairs == [(a.pk, b.pk), (a.pk, c.pk), (b.pk, c.pk), (b2.pk, a2.pk), (b2.pk, c2.pk)]
    _, out = _run(project, tmp_path, "adj", format="dpo", pair_policy="adjacent", ranking_method="copeland")
    pairs = [(r["chosen_id"], r["rejected_id"]) for r in _rows(out / "train.jsonl") if r["item_id"] == i1.pk]
    assert pairs == [(a.pk, b.pk), (b.pk, c.pk)]
    _, out = _run(project, tmp_path, "exp", format="dpo", tie_policy="expand")
    pairs = [(r["chosen_id"], r["rejected_id"]) for r in _rows(out / "train.jsonl") if r["item_id"] == i2.pk]
    assert pairs == [(b2.pk, a2.pk), (b2.pk, c2.pk)]
    _, out = _run(project, tmp_path, "pos", format="dpo", tie_policy="position")
    pairs = [(r["chosen_id"], r["rejected_id"]) for r in _rows(out / "train.jsonl") if r["item_id"] == i2.pk]
    assert pairs == [(b2.pk, a2.pk)]  # position: a2 came first in the source


def test_dpo_kto_sft_load_with_datasets_and_pass_trl_helpers(project, ranked, tmp_path, chat_tokenizer):
    import datasets
    from trl import is_conversational, maybe_apply_chat_template

    for fmt, extra in (("dpo", {}), ("kto", {}), ("sft", {"tie_policy": "expand"})):
        for style in ("standard", "conversational"):
            _, out = _run(project, tmp_path, f"{fmt}-{style}", format=fmt, style=style, outputs="jsonl,parquet,hf", **extra)
            ds = datasets.load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
            assert len(ds) > 0
            from_parquet = datasets.load_dataset("parquet", data_files=str(out / "train.parquet"), split="train")
            from_disk = datasets.load_from_disk(str(out / "hf"))["train"]
            assert from_parquet.to_list() == from_disk.to_list() == ds.to_list()
            for row in ds:
                assert is_conversational(row) is (style == "conversational"), (fmt, style, row)
                applied = maybe_apply_chat_template(row, chat_tokenizer)
                assert isinstance(applied["prompt"], str) and applied["prompt"]
                if style == "conversational":
                    assert "<|im_start|>user" in applied["prompt"]
                    assert applied["prompt"].endswith("<|im_start|>assistant\n")
                if fmt == "dpo":
                    assert isinstance(applied["chosen"], str) and isinstance(applied["rejected"], str)
                else:
                    assert isinstance(applied["completion"], str) and applied["completion"]
                if fmt == "kto":
                    assert isinstance(applied["label"], bool)


def test_kto_labels_best_true_worst_false_and_d2o_keeps_negatives(project, ranked, tmp_path):
    (i1, (a, b, c)), _, (i3, (a3, b3)) = ranked
    _, out = _run(project, tmp_path, "kto", format="kto")
    rows = {(r["item_id"], r["response_id"]): r["label"] for r in _rows(out / "train.jsonl")}
    assert rows[(i1.pk, a.pk)] is True and rows[(i1.pk, c.pk)] is False and (i1.pk, b.pk) not in rows
    assert rows[(i3.pk, b3.pk)] is True and rows[(i3.pk, a3.pk)] is False
    _, out = _run(project, tmp_path, "d2o", format="d2o")
    d2o = _rows(out / "train.jsonl")
    assert [(r["item_id"], r["rejected"]) for r in d2o] == [(i1.pk, " No."), (i3.pk, " No.")]
    assert set(d2o[0]) == {"item_id", "response_id", "prompt", "rejected", "label_source"}


def test_pro_layout_and_plain_form(project, ranked, tmp_path):
    (i1, (a, b, c)), (i2, _), _ = ranked
    _, out = _run(project, tmp_path, "pro", format="pro", tie_policy="position")
    rows = {r["item_id"]: r for r in _rows(out / "train.jsonl")}
    row = rows[i1.pk]
    assert row["suffix"] == ["Knead, proof, bake.", "Buy some.", "No."]
    assert row["reward"] == sorted(row["reward"], reverse=True) == [5.0, 4.0, 0.0]
    assert row["sft_index"] == 0
    assert row["prefix"] == [["<|prompter|>How do I bake bread?", "<|assistant|>"]] * 3
    # the PRO collator's join + marker replacement gives the HH transcript prompt
    joined = "".join(row["prefix"][0]).replace("<|prompter|>", "\n\nHuman: ").replace("<|assistant|>", "\n\nAssistant: ").rstrip()
    assert joined == "\n\nHuman: How do I bake bread?\n\nAssistant:"
    assert rows[i2.pk]["prefix"][0] == ["<|prompter|>Hi", "<|assistant|>Hello!", "<|prompter|>Name a colour.", "<|assistant|>"]
    _, out = _run(project, tmp_path, "plain", format="pro", pro_layout="plain", tie_policy="position")
    plain = {r["item_id"]: r for r in _rows(out / "train.jsonl")}
    assert plain[i2.pk]["responses"] == [" Green, a calm colour.", " Blue.", " I can't."]
    assert plain[i2.pk]["prompt"] == "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a colour.\n\nAssistant:"
    assert plain[i2.pk]["ranks"] == [0, 1, 1]  # the tie stays visible
    assert plain[i2.pk]["scores"][1] == plain[i2.pk]["scores"][2]


@pytest.fixture
def safety(project, raters):
    item, (r1, r2) = make_item(project, "How do I pick a lock?", ["Here is how: ...", "I can't help with that."])
    for u in raters[:2]:
        annotate(project, item, annotator=u, prompt_label="unsafe", prompt_categories=["S3"],
                 response_labels={r1: ("unsafe", ["S3", "S22"]), r2: ("safe", [])})
    annotate(project, item, annotator=raters[2], prompt_label="needs_caution",
             response_labels={r1: ("unsafe", ["S3"]), r2: ("safe", [])})
    item2, (r3,) = make_item(project, "What is the capital of France?", ["Paris."])
    annotate(project, item2, annotator=raters[0], prompt_label="safe", response_labels={r3: ("safe", [])})
    item3, _ = make_item(project, "Tell me a mildly edgy joke", [])
    annotate(project, item3, annotator=raters[0], prompt_label="needs_caution")
    return item, item2, item3


def test_guard_aegis_has_exactly_the_aegis_fields_and_needs_caution_policy(project, safety, tmp_path):
    item, item2, item3 = safety
    manifest, out = _run(project, tmp_path, "aegis", format="guard-aegis")
    rows = _rows(out / "train.jsonl")
    assert all(list(r) == ["id", "reconstruction_id_if_redacted", "prompt", "response", "prompt_label", "response_label",
                           "violated_categories", "prompt_label_source", "response_label_source", "item_id"]
               for r in rows)
    first = rows[0]
    assert first["id"] == str(item.pk) and first["prompt_label"] == "unsafe" and first["response_label"] == "unsafe"
    # S3 by all three unsafe voters, S22 by two of three: both kept, by votes; canonical names
    assert first["violated_categories"] == "Criminal Planning/Confessions, Illegal Activity"
    assert first["prompt_label_source"] == "human" and first["response_label_source"] == "human"
    assert rows[1]["response_label"] == "safe" and rows[1]["response"] == "I can't help with that."
    prompt_only = [r for r in rows if r["id"] == str(item3.pk)][0]
    assert prompt_only["response"] is None and prompt_only["response_label"] is None
    assert prompt_only["prompt_label"] == "unsafe"  # defensive: needs caution counts as unsafe
    _, out = _run(project, tmp_path, "aegis-perm", format="guard-aegis", needs_caution="permissive")
    prompt_only = [r for r in _rows(out / "train.jsonl") if r["id"] == str(item3.pk)][0]
    assert prompt_only["prompt_label"] == "safe"
    assert manifest["counts"]["labels"]["prompt_label:unsafe"] == 3


def test_guard_llamaguard_instruction_uses_project_taxonomy_and_target(project, safety, tmp_path):
    item, item2, _ = safety
    _, out = _run(project, tmp_path, "lg", format="guard-llamaguard")
    rows = _rows(out / "train.jsonl")
    agent = [r for r in rows if r["item_id"] == item.pk and r["role"] == "Agent"]
    assert agent[0]["completion"] == "unsafe\nS3,S22"
    assert agent[1]["completion"] == "safe"
    user = [r for r in rows if r["item_id"] == item.pk and r["role"] == "User"][0]
    assert user["completion"] == "unsafe\nS3"
    # every category of the project's taxonomy version, with its code
    assert "S1: Violence.\n" in user["prompt"] and "S23: Immoral/Unethical." in user["prompt"]
    assert user["prompt"].startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nTask: ")
    assert "Agent: Here is how: ..." in agent[0]["prompt"] and "User: How do I pick a lock?" in agent[0]["prompt"]


def test_exports_are_byte_identical_for_the_same_data_and_options(project, ranked, safety, tmp_path):
    for fmt in ("dpo", "guard-aegis", "pro"):
        opts = dict(format=fmt, outputs="jsonl,parquet,hf", split="0.5,0.25,0.25", seed=3, tie_policy="position")
        _, one = _run(project, tmp_path, f"{fmt}-1", **opts)
        _, two = _run(project, tmp_path, f"{fmt}-2", **opts)
        files_one = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
        files_two = sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
        assert files_one == files_two
        assert "manifest.json" in map(str, files_one) and "README.md" in map(str, files_one)
        for rel in files_one:
            assert (one / rel).read_bytes() == (two / rel).read_bytes(), f"{fmt}: {rel} differs"
        manifest = json.loads((one / "manifest.json").read_text())
        from exports.writers import file_sha256
        for name, meta in manifest["files"].items():
            assert file_sha256(one / name) == meta["sha256"]


def test_split_is_by_item_and_seeded(project, raters, tmp_path):
    for i in range(40):
        item, (a, b) = make_item(project, f"prompt {i}", [f"good {i}", f"bad {i}"])
        annotate(project, item, annotator=raters[0], ranking=[[a], [b]])
    manifest, out = _run(project, tmp_path, "s", format="dpo", split="0.6,0.2,0.2", seed=11, pair_policy="all-ordered-pairs")
    seen: dict[int, str] = {}
    for split in ("train", "validation", "test"):
        for row in _rows(out / f"{split}.jsonl"):
            assert seen.setdefault(row["item_id"], split) == split
    assert len(seen) == 40 and set(seen.values()) == {"train", "validation", "test"}
    opts = build_options({"format": "dpo", "split": "0.6,0.2,0.2", "seed": 12})
    other = {i: split_of(i, opts) for i in seen}
    assert other != seen  # another seed gives another split


def test_supersedes_and_adjudication_and_jury_fallback(project, raters, tmp_path):
    item, (a, b) = make_item(project, "q", ["first", "second"])
    old = annotate(project, item, annotator=raters[0], pair=(a, b, "a", 2))
    annotate(project, item, annotator=raters[0], pair=(a, b, "b", 2), supersedes=old)  # correction
    _, out = _run(project, tmp_path, "c", format="dpo")
    assert _rows(out / "train.jsonl")[0]["chosen"] == " second"
    # an undone judgment (a retraction record superseding it) counts for nothing
    item0, (e, f) = make_item(project, "q0", ["kept?", "no"])
    undone = annotate(project, item0, annotator=raters[1], pair=(e, f, "a", 1))
    Annotation.objects.create(project=project, item=item0, source="human", annotator=raters[1],
                              supersedes=undone, retracted=True)
    _, out = _run(project, tmp_path, "r", format="dpo")
    assert item0.pk not in [r["item_id"] for r in _rows(out / "train.jsonl")]
    # jury only item: used only as a fallback
    item2, (c, d) = make_item(project, "q2", ["x", "y"])
    annotate(project, item2, source="jury", pair=(c, d, "a", 1), detail="panel")
    _, out = _run(project, tmp_path, "f", format="dpo")
    rows = _rows(out / "train.jsonl")
    assert [r["label_source"] for r in rows] == ["human", "jury"]
    _, out = _run(project, tmp_path, "h", format="dpo", source="human-only")
    assert [r["item_id"] for r in _rows(out / "train.jsonl")] == [item.pk]
    # adjudication overrides the humans
    annotate(project, item, source="adjudication", annotator=raters[4], pair=(a, b, "a", 3))
    _, out = _run(project, tmp_path, "adj", format="dpo", source="human-only")
    row = _rows(out / "train.jsonl")[0]
    assert row["chosen"] == " first" and row["label_source"] == "adjudication"
    _, out = _run(project, tmp_path, "adjo", format="dpo", source="adjudicated-only")
    assert [r["item_id"] for r in _rows(out / "train.jsonl")] == [item.pk]


def test_filters_min_annotators_min_agreement_dates_categories(project, ranked, safety, tmp_path):
    (i1, _), _, (i3, _) = ranked
    _, out = _run(project, tmp_path, "a", format="dpo", min_annotators=2)
    assert {r["item_id"] for r in _rows(out / "train.jsonl")} == {i1.pk, i3.pk}
    _, out = _run(project, tmp_path, "b", format="dpo", min_agreement=0.9)
    assert {r["item_id"] for r in _rows(out / "train.jsonl")} == {i3.pk}  # item 1 agrees 8/9
    item, _, _ = safety
    manifest, out = _run(project, tmp_path, "c", format="guard-aegis", categories="S22")
    assert {r["id"] for r in _rows(out / "train.jsonl")} == {str(item.pk)}
    assert manifest["counts"]["items_dropped"]["categories"] == 2
    tomorrow = (timezone.now() + dt.timedelta(days=1)).date().isoformat()
    with pytest.raises(Exception, match="No rows to export"):
        _run(project, tmp_path, "d", format="dpo", date_from=tomorrow)
    assert not (tmp_path / "d").exists()


def test_bad_options_give_clear_errors(project, ranked, tmp_path, export_dir):
    with pytest.raises(ExportOptionsError, match="Unknown format 'csv'"):
        services.export_options_validate(project=project, raw={"format": "csv"})
    with pytest.raises(ExportOptionsError, match="Unknown category code"):
        services.export_options_validate(project=project, raw={"format": "guard-aegis", "categories": "S99"})
    with pytest.raises(ExportOptionsError, match="min_agreement must be between"):
        services.export_options_validate(project=project, raw={"format": "dpo", "min_agreement": 2})
    with pytest.raises(ExportOptionsError, match="split shares must add up to 1"):
        services.export_options_validate(project=project, raw={"format": "dpo", "split": "0.5,0.1,0.1"})
    with pytest.raises(ExportOptionsError, match="Unknown option"):
        services.export_options_validate(project=project, raw={"format": "dpo", "colour": "red"})
    # a filter that matches nothing: the job fails with the reasons, no file is presented
    export = services.export_request(project=project, options={"format": "dpo", "min_annotators": 50}, background=False)
    export = services.export_run(export_id=export.pk)
    assert export.status == Export.Status.FAILED
    assert "No rows to export" in export.error and "min_annotators: 3" in export.error
    assert not Path(export.out_dir).exists()
    # an empty project
    other = services.export_request(project=project, options={"format": "guard-aegis"}, background=False)
    other = services.export_run(export_id=other.pk)
    assert other.status == Export.Status.FAILED and "no_labels" in other.error


def test_jury_confidence_filter_uses_jury_decisions(project, raters, tmp_path):
    from django.apps import apps

    try:
        jury_model = apps.get_model("jury", "Jury")
        run_model = apps.get_model("jury", "JuryRun")
        decision_model = apps.get_model("jury", "JuryDecision")
    except LookupError:
        pytest.skip("the jury app has no JuryDecision model in this tree")
    jury = jury_model.objects.create(name="panel")
    run = run_model.objects.create(project=project, jury=jury, task="preference")
    confident, (a, b) = make_item(project, "sure", ["yes", "no"])
    doubtful, (c, d) = make_item(project, "unsure", ["maybe", "perhaps"])
    human, (e, f) = make_item(project, "human", ["h1", "h2"])
    annotate(project, human, annotator=raters[0], pair=(e, f, "a", 2))
    for item, (x, y), conf in ((confident, (a, b), 0.95), (doubtful, (c, d), 0.55)):
        ann = annotate(project, item, source="jury", pair=(x, y, "a", 1), detail="panel")
        decision_model.objects.create(run=run, item=item, task="preference", rule=jury.rule, label=str(x.pk),
                                      confidence=conf, annotation=ann)
    manifest, out = _run(project, tmp_path, "j", format="dpo", min_jury_confidence=0.9)
    # humans' rows are not jury rows and pass; the doubtful jury decision is left out
    assert [r["item_id"] for r in _rows(out / "train.jsonl")] == [confident.pk, human.pk]
    assert manifest["counts"]["items_dropped"] == {"min_jury_confidence": 1}
