"""The edit formats (issue 11, SYNFAC-EDIT, REFERENCE §3): ``edit-dpo`` and ``salt``, built from
synthetic edits that human review decided.

The unit is one ``edit_review`` item (the review of one edited response). Its pair comes from the
review consensus, ``annotation.selectors.edit_review_outcomes``:

- ``accept``: the edit as it is; ``fix``: the reviewer's fix that the consensus names (a
  ``human_edited`` response); ``reject`` or no consensus (a tie, or no review yet): no row;
- direction ``improve`` (low → high): chosen = the edit, rejected = the original;
  ``corrupt`` (high → low): chosen = the original, rejected = the edit (the reference's H2L pair).

``salt`` adds the token-level alignment of rejected (``S_generated``) to chosen (``S_edited``)
under a named tokenizer (``exports.salt``). The rows' split is the original item's, so an item's
ordinary rows and its edits' rows always share a split. Reads never build model instances; a chunk
costs four queries (its items, the consensus's two, its verdict records).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from django.db.models import Q

from annotation.models import Annotation, Item
from annotation.prompts import hh_completion, prompt_hh_transcript, prompt_messages
from exports.formats import Skip
from exports.options import ExportOptions
from exports.salt import EDITED_WEIGHTS, GENERATED_WEIGHTS, LABEL_TEXT, align, token_ids


@dataclass(slots=True)
class EditRecord:
    """One current review verdict."""

    id: int
    source: str
    annotator_id: int | None
    reviewer: str
    verdict: str
    fix_id: int | None
    fix_text: str | None

    def raw(self) -> dict:
        out: dict = {"annotation_id": self.id, "source": self.source, "annotator_id": self.annotator_id,
                     "verdict": self.verdict}
        if self.fix_id is not None:
            out["fix_id"] = self.fix_id
        return out


@dataclass(slots=True)
class EditEvidence:
    review_item_id: int
    item_id: int  # the original (judge) item: the split key
    external_id: str
    prompt: list[dict]
    original_id: int
    original_text: str
    edit_id: int
    edit_text: str
    meta: dict  # the review item's metadata["edit"]: direction, editor, template, run, ...
    outcome: str | None  # the review consensus: accept / reject / fix, or None
    fix_id: int | None  # with outcome fix: the fix that stands (a human_edited Response)
    records: list[EditRecord] = field(default_factory=list)


_REVIEW_SOURCES = (Annotation.Source.HUMAN, Annotation.Source.ADJUDICATION)


def edit_items_query(*, project, options: ExportOptions):
    from exports.evidence import flagged_items_condition

    qs = Item.objects.filter(project=project, kind=Item.Kind.EDIT_REVIEW)
    if options.exclude_flagged:
        qs = qs.exclude(flagged_items_condition())
        qs = qs.exclude(Q(metadata__has_key="flagged") & Q(metadata__flagged=True))
    return qs


def iter_edit_chunks(*, project, options: ExportOptions) -> Generator[list[EditEvidence], None, None]:
    """The project's edit_review items in id order, ``options.chunk_size`` at a time (keyset
    pagination: bounded queries and flat memory)."""
    from annotation.selectors import edit_review_outcomes

    base = edit_items_query(project=project, options=options).order_by("id")
    last = 0
    while True:
        rows = list(base.filter(id__gt=last).values_list(
            "id", "prompt", "metadata", "review_of_id", "review_of__text", "review_of__parent_id",
            "review_of__parent__text", "review_of__item_id", "review_of__item__external_id", "review_of__metadata",
        )[:options.chunk_size])
        if not rows:
            return
        last = rows[-1][0]
        # the consensus of this chunk's edits only: memory stays flat however many edits there are
        outcomes = edit_review_outcomes(project, review_item_ids=[r[0] for r in rows])
        chunk: dict[int, EditEvidence] = {}
        for rid, prompt, metadata, edit_id, edit_text, orig_id, orig_text, item_id, external_id, edit_meta in rows:
            meta = dict((metadata or {}).get("edit") or {})
            meta.setdefault("direction", (edit_meta or {}).get("direction", ""))
            outcome = outcomes.get(edit_id)
            chunk[rid] = EditEvidence(
                rid, item_id, external_id, prompt_messages(prompt), orig_id, orig_text, edit_id, edit_text, meta,
                outcome.verdict if outcome is not None else None, outcome.fix_response_id if outcome is not None else None,
            )
        for aid, item_id, source, annotator_id, reviewer, verdict, fix_id, fix_text in (
            # the records the consensus counts: current verdicts of people (reviewers, adjudicators)
            Annotation.objects.current().filter(item_id__in=list(chunk), source__in=_REVIEW_SOURCES)
            .exclude(edit_verdict="").order_by("id")
            .values_list("id", "item_id", "source", "annotator_id", "annotator__username", "edit_verdict",
                         "edit_fix_id", "edit_fix__text")
        ):
            chunk[item_id].records.append(EditRecord(aid, source, annotator_id, reviewer or "", verdict, fix_id, fix_text))
        yield list(chunk.values())


def _edit_side(ev: EditEvidence) -> tuple[int, str]:
    """The edited text the pair uses: the edit itself (accept) or a reviewer's fix (fix)."""
    if ev.outcome == "accept":
        return ev.edit_id, ev.edit_text
    # the fix that stands (the consensus names it: an adjudicator's, else the newest reviewer's) is
    # the fix of one of the item's current records, whose text came with the records
    for r in ev.records:
        if r.fix_id is not None and r.fix_id == ev.fix_id and r.fix_text is not None:
            return r.fix_id, r.fix_text
    raise Skip("fix_missing")


def edit_pair(ev: EditEvidence, options: ExportOptions) -> dict:
    """The pair of one reviewed edit and its columns, or :class:`Skip` with the reason."""
    if options.min_annotators is not None and len(ev.records) < options.min_annotators:
        raise Skip("min_annotators")
    if ev.outcome is None:
        raise Skip("no_consensus" if ev.records else "unreviewed")
    if ev.outcome == "reject":
        raise Skip("rejected")
    edit_id, edit_text = _edit_side(ev)
    direction = ev.meta.get("direction")
    if direction == "improve":
        chosen, rejected = (edit_id, edit_text), (ev.original_id, ev.original_text)
    elif direction == "corrupt":
        chosen, rejected = (ev.original_id, ev.original_text), (edit_id, edit_text)
    else:
        raise Skip("no_direction")
    if chosen[1] == rejected[1]:
        raise Skip("no_change")
    template = ev.meta.get("template") or {}
    return {
        "chosen": chosen, "rejected": rejected, "direction": direction, "verdict": ev.outcome,
        "editor": str(ev.meta.get("editor") or ""),
        "template": str(template.get("name") or "") if isinstance(template, dict) else str(template),
        "template_version": template.get("version") if isinstance(template, dict) else None,
        "edit_run_id": ev.meta.get("run"),
        "reviewers": len(ev.records),
        "label_source": "+".join(sorted({r.source for r in ev.records})),
    }


def edit_rows_for(ev: EditEvidence, options: ExportOptions, tokenizer: Any = None) -> list[dict]:
    pair = edit_pair(ev, options)
    (chosen_id, chosen), (rejected_id, rejected) = pair["chosen"], pair["rejected"]
    tail = {
        "direction": pair["direction"], "verdict": pair["verdict"], "editor": pair["editor"],
        "template": pair["template"], "template_version": pair["template_version"],
        "edit_run_id": pair["edit_run_id"], "reviewers": pair["reviewers"], "label_source": pair["label_source"],
    }
    if options.format == "edit-dpo":
        if options.style == "conversational":
            prompt: Any = ev.prompt
            chosen_v: Any = [{"role": "assistant", "content": chosen}]
            rejected_v: Any = [{"role": "assistant", "content": rejected}]
        else:
            # the one standard form of every export: the HH transcript prompt, the joining space in the completion
            prompt, chosen_v, rejected_v = prompt_hh_transcript(ev.prompt), hh_completion(chosen), hh_completion(rejected)
        # key order is the file's column order
        return [{"item_id": ev.item_id, "review_item_id": ev.review_item_id, "prompt": prompt, "chosen": chosen_v,
                 "rejected": rejected_v, "chosen_id": chosen_id, "rejected_id": rejected_id, **tail}]
    assert tokenizer is not None  # salt: the pipeline loads the named tokenizer once per export
    chosen_ids, rejected_ids = token_ids(tokenizer, chosen), token_ids(tokenizer, rejected)
    a = align(rejected_ids, chosen_ids)  # S_generated = rejected, S_edited = chosen
    return [{
        "item_id": ev.item_id, "review_item_id": ev.review_item_id, "prompt": prompt_hh_transcript(ev.prompt),
        "chosen": chosen, "rejected": rejected, "chosen_id": chosen_id, "rejected_id": rejected_id,
        "chosen_ids": chosen_ids, "rejected_ids": rejected_ids,
        "aligned_chosen": a.edited, "aligned_rejected": a.generated, "labels": a.labels,
        "chosen_weights": a.edited_weights, "rejected_weights": a.generated_weights, "alignment_score": a.score,
        **tail,
    }]


def edit_schema(options: ExportOptions) -> pa.Schema:
    conv = options.format == "edit-dpo" and options.style == "conversational"
    msgs = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    text_t = msgs if conv else pa.string()
    cols: list[tuple[str, pa.DataType]] = [
        ("item_id", pa.int64()), ("review_item_id", pa.int64()), ("prompt", text_t), ("chosen", text_t),
        ("rejected", text_t), ("chosen_id", pa.int64()), ("rejected_id", pa.int64()),
    ]
    if options.format == "salt":
        ids, floats = pa.list_(pa.int64()), pa.list_(pa.float64())
        cols += [("chosen_ids", ids), ("rejected_ids", ids), ("aligned_chosen", ids), ("aligned_rejected", ids),
                 ("labels", pa.list_(pa.string())), ("chosen_weights", floats), ("rejected_weights", floats),
                 ("alignment_score", pa.int64())]
    cols += [("direction", pa.string()), ("verdict", pa.string()), ("editor", pa.string()), ("template", pa.string()),
             ("template_version", pa.int64()), ("edit_run_id", pa.int64()), ("reviewers", pa.int64()),
             ("label_source", pa.string())]
    return pa.schema(cols)


@dataclass
class EditStats:
    """What the card says about the edits in the export (counted over exported rows)."""

    editors: Counter = field(default_factory=Counter)
    templates: Counter = field(default_factory=Counter)
    reviewers: Counter = field(default_factory=Counter)  # username -> verdicts on exported edits
    directions: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)  # salt: C / I / D / S over all rows
    tokenizer: dict | None = None

    def add(self, ev: EditEvidence, rows: list[dict]) -> None:
        for row in rows:
            self.editors[row["editor"] or "(unknown)"] += 1
            version = row["template_version"]
            self.templates[f"{row['template'] or '(unknown)'}" + (f" v{version}" if version is not None else "")] += 1
            self.directions[row["direction"]] += 1
            if "labels" in row:
                self.labels.update(row["labels"])
        for r in ev.records:
            self.reviewers[r.reviewer or f"{r.source} record"] += 1

    def as_dict(self, options: ExportOptions) -> dict:
        out: dict = {
            "editors": dict(sorted(self.editors.items())),
            "templates": dict(sorted(self.templates.items())),
            "reviewers": dict(sorted(self.reviewers.items())),
            "directions": dict(sorted(self.directions.items())),
            "pairs": {
                "improve": "chosen = the accepted edit (or the reviewer's fix), rejected = the original",
                "corrupt": "chosen = the original, rejected = the accepted edit (or the reviewer's fix)",
            },
            "review": "the review consensus of each edit (annotation.selectors.edit_review_outcomes: a"
                      " researcher's adjudication decides, else the verdict most reviewers gave, none on a tie):"
                      " accept and fix give a row; reject, ties and unreviewed edits give none. A fix row uses the"
                      " fix that stands (the adjudicator's, else the newest reviewer's)",
        }
        if options.format == "salt":
            out["salt"] = {
                "tokenizer": self.tokenizer,
                "alignment": "Needleman-Wunsch on token ids (match +1, mismatch -1, gap -1) of rejected"
                             " (S_generated) against chosen (S_edited); special tokens are not added; ties prefer"
                             " the diagonal, then a deletion, then an insertion, from the end",
                "labels": LABEL_TEXT,
                "weights": {"chosen (edited)": EDITED_WEIGHTS, "rejected (generated)": GENERATED_WEIGHTS},
                "gap_id": -100,
                "label_counts": {k: self.labels.get(k, 0) for k in "CIDS"},
            }
        return out


def add_edit_item_stats(stats, ev: EditEvidence, rows: list[dict]) -> None:
    """The pipeline's per-item counters (``exports.pipeline.Stats``) for one exported edit."""
    stats.items_exported += 1
    stats.annotators_total += len(ev.records)
    if ev.records:
        a = sum(r.verdict == ev.outcome for r in ev.records) / len(ev.records)
        stats.agreement_sum += a
        stats.agreement_n += 1
        stats.agreement_min = a if stats.agreement_min is None else min(stats.agreement_min, a)
    for row in rows:
        stats.label_sources[row["label_source"]] += 1
        stats.labels[f"direction:{row['direction']}"] += 1
        stats.labels[f"verdict:{row['verdict']}"] += 1


def edit_evidence_line(ev: EditEvidence, split: str) -> dict:
    return {
        "item_id": ev.item_id, "review_item_id": ev.review_item_id, "external_id": ev.external_id, "split": split,
        "edit": {"original_id": ev.original_id, "edit_id": ev.edit_id, "outcome": ev.outcome, "fix_id": ev.fix_id,
                 "direction": ev.meta.get("direction"), "editor": ev.meta.get("editor"),
                 "template": ev.meta.get("template"), "run": ev.meta.get("run"),
                 "word_distance": ev.meta.get("word_distance")},
        "records": [r.raw() for r in ev.records],
    }
