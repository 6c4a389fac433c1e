"""The dataset card (README.md, with the Hugging Face front matter that maps files to splits) and
manifest.json (counts, distributions, consensus, filters, taxonomy, agreement, platform version,
sha256 of every file).

Both are deterministic: no timestamps, no export ids, sorted keys. When the export ran is on the
``Export`` row in the database, not in the files, so the same data and options give the same bytes.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from exports.formats import MARGIN_SCALE, TaxonomyContext
from exports.grouping import GROUPING_TEXT
from exports.options import EDIT_FORMATS, FORMAT_SPECS, ExportOptions
from exports.writers import file_sha256

METHOD_TEXT = {
    "borda": "Borda count (a point per response ranked below, half a point per tied response; equal totals tie)",
    "copeland": "Copeland (1 per won pairwise duel, 0.5 per drawn duel; equal totals tie)",
    "ranked-pairs": "Ranked pairs / Tideman (majorities locked strongest first; equal-margin majorities that form a cycle are all skipped; unlocked responses tie)",
    "bradley-terry": "Bradley-Terry (MM algorithm, weak prior of one virtual tie against a reference; scores are log-strengths; equal strengths tie)",
}
SOURCE_TEXT = {
    "human-only": "human annotations and imported human labels",
    "jury-only": "LLM-jury decisions",
    "human-with-jury-fallback": "human annotations and imported human labels; the LLM jury's decision where an item has none",
    "adjudicated-only": "adjudication records only",
}
FORMAT_TEXT = {fmt: spec.card for fmt, spec in FORMAT_SPECS.items()}
EVIDENCE_TEXT = (
    "`evidence.jsonl` holds, for every exported item, the consensus (method, groups, scores, agreement)"
    " and the raw per-rater records it was computed from. `manifest.json` repeats everything here as data."
)
EVIDENCE_TEXT_EDITS = (
    "`evidence.jsonl` holds, for every exported edit, the edit (original, edited response, direction, editor, template,"
    " run), its review outcome and the raw review verdicts. `manifest.json` repeats everything here as data."
)
TIE_TEXT = (
    "Tie policy `skip` leaves an item out when a single best or worst response must be picked and several are tied;"
    " `expand` emits every tied response; `position` takes the one that came first in the source. Pairs are never"
    " made between tied responses."
)

# Upstream data sets by import format: what the card credits. A format not listed (Tribunal's own
# JSONL / CSV, csv-raters) says "unknown": Tribunal cannot know where such a file came from.
UPSTREAM: dict[str, dict[str, str | None]] = {
    "hh-rlhf": {
        "dataset": "Anthropic HH-RLHF",
        "url": "https://github.com/anthropics/hh-rlhf",
        "licence": "MIT",
        "attribution": "Bai et al. (2022), Training a Helpful and Harmless Assistant with Reinforcement Learning "
        "from Human Feedback. Copyright Anthropic; MIT licence (keep the copyright and licence notice).",
    },
    "oasst": {
        "dataset": "OpenAssistant Conversations (oasst1)",
        "url": "https://huggingface.co/datasets/OpenAssistant/oasst1",
        "licence": "Apache-2.0",
        "attribution": "Köpf et al. (2023), OpenAssistant Conversations: Democratizing Large Language Model "
        "Alignment. Apache License 2.0 (keep the licence and a notice of changes).",
    },
    "aegis": {
        "dataset": "NVIDIA Aegis 2.0 (Aegis-AI-Content-Safety-Dataset-2.0)",
        "url": "https://huggingface.co/datasets/nvidia/Aegis-AI-Content-Safety-Dataset-2.0",
        "licence": "CC-BY-4.0",
        "attribution": "Ghosh et al. (2025), AEGIS2.0: A Diverse AI Safety Dataset and Risks Taxonomy for "
        "Alignment of LLM Guardrails. NVIDIA, CC BY 4.0: credit the source, link the licence, say what changed.",
    },
}
UNKNOWN_UPSTREAM: dict[str, str | None] = {"dataset": "unknown", "url": None, "licence": "unknown", "attribution": "unknown"}
PRO_READER_NOTE = (
    "The PRO reference code (DAMO-ConvAI PRO, train/utils) reads every file in its data folder: give it a folder "
    "holding only the split's .jsonl file (not README.md, manifest.json or evidence.jsonl), and one ranking length "
    "(its training_stage); pro_length sets that length"
)


def upstream(sources: list[dict]) -> list[dict]:
    """The data sets the exported items came from, with licence and attribution (manifest and card)."""
    out: dict[str, dict] = {}
    for src in sources:
        fmt = src["format"]
        entry: dict[str, str | None]
        if fmt is None:
            key, entry = "tribunal", {"dataset": "labelled in Tribunal", "url": None, "licence": "the project's own",
                                      "attribution": "none"}
        else:
            key, entry = fmt, UPSTREAM.get(fmt, UNKNOWN_UPSTREAM)
        row = out.setdefault(key, {"import_format": fmt, **entry, "files": [], "items": 0})
        if src["file"] and src["file"] not in row["files"]:
            row["files"].append(src["file"])
        row["items"] += src["items"]
    return [out[k] for k in sorted(out)]


def consensus_description(options: ExportOptions) -> dict:
    if options.format in EDIT_FORMATS:
        return {
            "review": "edits come from synthetic-edit runs (an editor model, a versioned template) and are decided by"
                      " human review of each edit (accept / reject / fix); only accepted or fixed edits give rows",
            "corrections": "only the newest record of a correction chain counts",
            "consensus": "annotation.selectors.edit_review_outcomes; judge items and their judgments are not read",
        }
    guard = options.format.startswith("guard") or (options.format in ("kto", "d2o") and options.signal == "safety")
    out = {
        "agreement": "share of the raters' judgments that agree with the consensus; null for an item with a single "
        "rater (one rater's agreement is not a figure); such items are counted apart, min_agreement leaves them out",
        "source_policy": options.source,
        "source_policy_text": SOURCE_TEXT[options.source],
        "imported_labels": "records imported from other data sets (e.g. HH-RLHF preferences, OpenAssistant rankings, Aegis labels) are human labels and count as human evidence",
        "adjudication": "adjudication records override all other records of an item under every source policy",
        "corrections": "only the newest record of a correction chain counts",
        "tie_policy": options.tie_policy,
    }
    if guard:
        out.update({
            "safety": "majority of raters",
            "needs_caution": options.needs_caution,
            "needs_caution_text": "needs caution counts as unsafe" if options.needs_caution == "defensive" else "needs caution counts as safe",
            "safety_tie": options.safety_tie,
            "categories": "kept when at least half of the raters who called it unsafe chose it; ordered by votes, then taxonomy order",
        })
    else:
        out.update({
            "ranking_method": options.ranking_method,
            "ranking_method_text": METHOD_TEXT[options.ranking_method],
            "pairwise": "items judged on a single pair: majority by count, summed stated strength breaks an equal count, else a tie",
            "margin": MARGIN_SCALE,
        })
    return out


def _filters(options: ExportOptions) -> dict:
    return {
        "min_agreement": options.min_agreement,
        "min_annotators": options.min_annotators,
        "date_from": options.date_from,
        "date_to": options.date_to,
        "categories": list(options.categories),
        "min_jury_confidence": options.min_jury_confidence,
        "exclude_flagged": options.exclude_flagged,
    }


def write_card_and_manifest(
    *, folder: Path, project, options: ExportOptions, stats: dict, tax: TaxonomyContext, splits: list[str],
    edits: dict | None = None,
) -> dict:
    """``edits``: the edit formats' section (editors, templates, reviewers; salt's tokenizer and
    weights), in the manifest and the card; None for the other formats."""
    base = {
        "platform": {"name": "Tribunal", "version": settings.TRIBUNAL_VERSION},
        "project": {"slug": project.slug, "name": project.name},
        "format": options.format,
        "format_text": FORMAT_TEXT[options.format],
        "options": options.to_dict(),
        "consensus": consensus_description(options),
        "filters": _filters(options),
        "split": {"shares": dict(zip(("train", "validation", "test"), options.split)), "seed": options.seed,
                  "by": "group", "grouping": GROUPING_TEXT},
        "upstream": upstream(stats["sources"]),
        "taxonomy": {"slug": tax.slug, "name": tax.name, "version": tax.version, "codes": list(tax.codes)},
        "counts": stats,
        "splits": splits,
    }
    if edits is not None:
        base["edits"] = edits
    data_files = sorted(p for p in folder.rglob("*") if p.is_file())
    files = {str(p.relative_to(folder)): {"sha256": file_sha256(p), "bytes": p.stat().st_size} for p in data_files}
    readme = _readme(base, files, options, splits)
    (folder / "README.md").write_text(readme, encoding="utf-8")
    files["README.md"] = {"sha256": file_sha256(folder / "README.md"), "bytes": (folder / "README.md").stat().st_size}
    manifest = {**base, "files": dict(sorted(files.items()))}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def _table(rows: dict) -> str:
    if not rows:
        return "_none_\n"
    return "| | count |\n|---|---|\n" + "".join(f"| `{k}` | {v} |\n" for k, v in rows.items())


def _readme(base: dict, files: dict, options: ExportOptions, splits: list[str]) -> str:
    counts = base["counts"]
    front = ["---", "configs:", "- config_name: default", "  data_files:"]
    ext = "jsonl" if "jsonl" in options.outputs else "parquet" if "parquet" in options.outputs else None
    if ext:
        for s in splits:
            front += [f"  - split: {s}", f"    path: {s}.{ext}"]
    front += ["tags:", f"- {options.format}", "- tribunal", "---", ""]
    cons = base["consensus"]
    lines = [
        f"# {base['project']['name']}: {options.format} export",
        "",
        f"{base['format_text']}. Exported by Tribunal {base['platform']['version']} from project "
        f"`{base['project']['slug']}`, labels under taxonomy **{base['taxonomy']['name']} v{base['taxonomy']['version']}**.",
        "",
        "**Content warning:** safety data sets contain offensive or harmful text.",
        "",
        "## Files",
        "",
        "| file | sha256 | bytes |",
        "|---|---|---|",
        *[f"| `{name}` | `{meta['sha256']}` | {meta['bytes']} |" for name, meta in sorted(files.items())],
        "",
        EVIDENCE_TEXT_EDITS if options.format in EDIT_FORMATS else EVIDENCE_TEXT,
        "",
        "## Counts",
        "",
        f"- items read: {counts['items_seen']}; exported: {counts['items_exported']}; rows: {counts['rows_total']}",
        f"- rows per split: {', '.join(f'{k} {v}' for k, v in counts['rows'].items())}",
        f"- mean raters per exported item: {counts['annotators_per_item_mean']}",
        f"- agreement with the consensus (mean / min over the {counts['agreement']['items_with_figure']} items with a figure): "
        f"{counts['agreement']['mean']} / {counts['agreement']['min']}",
        f"- single-rater items (no agreement figure, not in the mean): {counts['agreement']['single_rater_items']}",
        *([f"- rows with margin null (no stated strength): {counts['margin_null_rows']}"] if options.include_margin else []),
        *([f"- ranking lengths (responses per row: rows): {', '.join(f'{k}: {v}' for k, v in counts['ranking_lengths'].items())}"]
          if counts["ranking_lengths"] else []),
        "",
        "Items left out, by reason:",
        "",
        _table(counts["items_dropped"]),
        "Label sources (rows):",
        "",
        _table(counts["label_sources"]),
        "Labels (rows):",
        "",
        _table(counts["labels"]),
        "Categories (items):",
        "",
        _table(counts["categories"]),
        "## Consensus",
        "",
        *[f"- **{k}**: {v}" for k, v in cons.items()],
        "",
        "" if options.format in EDIT_FORMATS else TIE_TEXT,
        "",
        *_edits_section(base.get("edits")),
        "## Filters",
        "",
        *[f"- {k}: `{json.dumps(v)}`" for k, v in base["filters"].items()],
        "",
        "## Splits",
        "",
        f"Seeded split by group (seed {options.seed}; shares train/validation/test {list(options.split)}): {GROUPING_TEXT}."
        f" Groups per split: {', '.join(f'{k} {v}' for k, v in counts['groups_per_split'].items())}.",
        "",
        *([f"**PRO trainer:** {PRO_READER_NOTE}.", ""] if options.format == "pro" else []),
        "## Sources and licences",
        "",
        "Every imported record in `evidence.jsonl` names its import (format, file, line, upstream id). Upstream data sets:",
        "",
        "| data set | licence | items | files | attribution |",
        "|---|---|---|---|---|",
        *[f"| {u['dataset']} | {u['licence']} | {u['items']} | {', '.join(f'`{f}`' for f in u['files']) or '-'} | {u['attribution']} |"
          for u in base["upstream"]],
        "",
        "Use of this export is bound by each upstream licence; \"unknown\" means Tribunal does not know the file's origin.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        f"ds = load_dataset(\"json\", data_files={{{', '.join(repr(s) + ': ' + repr(s + '.jsonl') for s in splits)}}})"
        if "jsonl" in options.outputs else "ds = load_dataset(\"parquet\", data_dir=\".\")",
        "```",
        "",
    ]
    return "\n".join(front + lines)


def _edits_section(edits: dict | None) -> list[str]:
    """The card's words on the edits: who edited with what, who reviewed, how pairs and (salt) the
    token labels are made."""
    if edits is None:
        return []
    lines = [
        "## Edits",
        "",
        f"- **pairs, improve**: {edits['pairs']['improve']}",
        f"- **pairs, corrupt**: {edits['pairs']['corrupt']}",
        f"- **review**: {edits['review']}",
        "",
        "Editors (rows):",
        "",
        _table(edits["editors"]),
        "Templates (rows):",
        "",
        _table(edits["templates"]),
        "Directions (rows):",
        "",
        _table(edits["directions"]),
        "Reviewers (verdicts on exported edits):",
        "",
        _table(edits["reviewers"]),
    ]
    salt = edits.get("salt")
    if salt:
        tok = salt["tokenizer"] or {}
        lines += [
            "## SALT alignment",
            "",
            f"Tokenizer **{tok.get('name')}** ({tok.get('source')}, {tok.get('class')}, {tok.get('vocab_size')} tokens). "
            f"{salt['alignment'][0].upper() + salt['alignment'][1:]}. Aligned sequences mark a gap with {salt['gap_id']}.",
            "",
            "| label | meaning | weight on chosen (edited) | weight on rejected (generated) |",
            "|---|---|---|---|",
            *[
                f"| {label} | {text} | {salt['weights']['chosen (edited)'].get(label, '—')} "
                f"| {salt['weights']['rejected (generated)'].get(label, '—')} |"
                for label, text in salt["labels"].items()
            ],
            "",
            "`chosen_weights` has one weight per chosen token and `rejected_weights` one per rejected token.",
            "",
            "Labels over all rows:",
            "",
            _table(salt["label_counts"]),
        ]
    return lines
