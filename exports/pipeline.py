"""The export itself: stream items from the database, decide consensus, write rows per split,
then the dataset card and manifest. Called by the export service (in the worker, or in-process
for ``manage.py export_dataset``); it knows nothing about jobs or users.

Memory stays flat: one chunk of items is alive at a time, writers flush in bounded batches, and
statistics are counters (their size depends on the number of labels and categories, not rows).
"""
from __future__ import annotations

import gc
import hashlib
import os
import shutil
import socket
from collections import Counter, defaultdict
from collections.abc import Callable, Generator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from exports.edits import (
    EditStats,
    add_edit_item_stats,
    edit_evidence_line,
    edit_items_query,
    edit_rows_for,
    edit_schema,
    iter_edit_chunks,
)
from exports.evidence import ItemEvidence, decide, item_ids_query, iter_chunks
from exports.formats import Skip, TaxonomyContext, rows_for, schema_for
from exports.grouping import split_groups
from exports.options import EDIT_FORMATS, SPLITS, ExportOptions, natural_key
from exports.writers import SplitWriter, write_hf_dataset


class ExportEmptyError(Exception):
    """The options selected no rows. Nothing is written; the message says what removed the items."""


def split_of(item_id: int, options: ExportOptions) -> str:
    """Seeded, per-item split: a hash of (seed, item id) placed on [0, 1). An item's rows always
    share one split, and the assignment does not depend on which other items are exported."""
    return splitter(options)(item_id)


def splitter(options: ExportOptions) -> Callable[[int], str]:
    """``split_of`` for one export's options, with the per-export work done once."""
    live = [name for name, share in zip(SPLITS, options.split) if share > 0]
    fallback = live[-1]
    if len(live) == 1:
        # u < 1 always, and every share but one is 0: the answer does not depend on the hash
        return lambda item_id: fallback
    table = []
    edge = 0.0
    for name, share in zip(SPLITS, options.split):
        edge += share
        if share > 0:
            table.append((name, edge))
    prefix = f"{options.seed}:".encode()
    sha256 = hashlib.sha256
    from_bytes = int.from_bytes

    def split(item_id: int) -> str:
        u = from_bytes(sha256(prefix + str(item_id).encode()).digest()[:8], "big") / 2**64
        for name, upper in table:
            if u < upper:
                return name
        return fallback

    return split


@contextmanager
def _cyclic_gc_paused():
    """Pause Python's cyclic garbage collector while rows stream.

    Rows are plain acyclic objects freed by reference counting, but each chunk promotes tens of
    thousands of young objects, and CPython then keeps re-scanning every object of the process
    (Django, pyarrow, ...) in full collections: about 40% of the export's CPU time. The loop
    collects the young generations itself every 32 chunks instead; the collector is restored
    as it was, even on error. (Measured: a 100k-row DPO export leaves a few hundred unreachable
    objects in total, none per row.)
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@lru_cache(maxsize=4)
def load_tokenizer_cached(name: str) -> tuple[Any, dict]:
    """The salt export's tokenizer, loaded once per process and name (a worker runs many exports)."""
    from exports.salt import load_tokenizer

    return load_tokenizer(name)


def taxonomy_context(project) -> TaxonomyContext:
    version = project.taxonomy_version
    cats = list(version.categories.order_by("order", "code").values_list("code", "name"))
    return TaxonomyContext(
        slug=version.taxonomy.slug,
        name=version.taxonomy.name,
        version=version.version,
        codes=tuple(c for c, _ in cats),
        names=dict(cats),
    )


_LABEL_KEYS = ("prompt_label", "response_label", "label", "role")


@dataclass
class Stats:
    items_seen: int = 0
    items_exported: int = 0
    rows: Counter = field(default_factory=Counter)  # per split
    items_per_split: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    label_sources: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)  # "prompt_label:unsafe", "label:true", ...
    categories: Counter = field(default_factory=Counter)
    methods: Counter = field(default_factory=Counter)
    annotators_total: int = 0
    agreement_sum: float = 0.0
    agreement_n: int = 0
    agreement_min: float | None = None
    single_rater: int = 0  # exported items with one rater: no agreement figure
    split_groups: defaultdict = field(default_factory=lambda: defaultdict(set))  # split -> group ids
    ranking_lengths: Counter = field(default_factory=Counter)  # PRO: responses per row
    sources: Counter = field(default_factory=Counter)  # (import format, file) -> items; ("", "") made here
    margin_null_rows: int = 0
    bt_not_converged: int = 0

    def add_item(self, ev: ItemEvidence, rows: list[dict], options: ExportOptions) -> None:
        self.items_exported += 1
        guard = options.format.startswith("guard") or options.signal == "safety" and options.format in ("kto", "d2o")
        if guard:
            raters = len(ev.safety_records)
            agreements = [
                c.agreement for c in [ev.prompt_safety, *ev.response_safety.values()] if c is not None and c.agreement is not None
            ]
        else:
            raters = len(ev.preference_records)
            pref = ev.preference
            agreements = [pref.agreement] if pref is not None and pref.agreement is not None else []
        self.annotators_total += raters
        if raters < 2:
            self.single_rater += 1
        if agreements:
            a = sum(agreements) / len(agreements)
            self.agreement_sum += a
            self.agreement_n += 1
            self.agreement_min = a if self.agreement_min is None else min(self.agreement_min, a)
        if not guard:
            pref = ev.preference
            if pref is not None:
                self.methods[pref.method] += 1
                if pref.detail.get("converged") is False:
                    self.bt_not_converged += 1
        else:
            for c in [ev.prompt_safety, *ev.response_safety.values()]:
                if c is not None:
                    self.categories.update(c.categories)
        records = ev.safety_records if guard else ev.preference_records
        formats = sorted({r.source_detail for r in records if r.source == "import"})
        if formats:
            for fmt in formats:
                self.sources[(fmt, (ev.provenance or {}).get("file") or "")] += 1
        else:
            self.sources[("", "")] += 1
        label_sources, labels = self.label_sources, self.labels
        for row in rows:
            if "margin" in row and row["margin"] is None:
                self.margin_null_rows += 1
            if "suffix" in row or "responses" in row:
                self.ranking_lengths[len(row.get("suffix") or row.get("responses") or [])] += 1
            label_sources[row.get("label_source") or row.get("prompt_label_source") or ""] += 1
            for key in _LABEL_KEYS:
                if key in row:
                    labels[f"{key}:{row[key]}"] += 1

    def as_dict(self) -> dict:
        return {
            "items_seen": self.items_seen,
            "items_exported": self.items_exported,
            "items_dropped": dict(sorted(self.dropped.items())),
            "rows": dict(sorted(self.rows.items())),
            "rows_total": sum(self.rows.values()),
            "items_per_split": dict(sorted(self.items_per_split.items())),
            "groups_per_split": {k: len(v) for k, v in sorted(self.split_groups.items())},
            "label_sources": dict(sorted(self.label_sources.items())),
            "labels": dict(sorted(self.labels.items())),
            "categories": dict(sorted(self.categories.items(), key=lambda kv: natural_key(kv[0]))),
            "ranking_lengths": {str(k): v for k, v in sorted(self.ranking_lengths.items())},
            "margin_null_rows": self.margin_null_rows,
            "sources": [
                {"format": fmt or None, "file": file or None, "items": n}
                for (fmt, file), n in sorted(self.sources.items())
            ],
            "consensus_methods": dict(sorted(self.methods.items())),
            "bradley_terry_not_converged": self.bt_not_converged,
            "annotators_per_item_mean": round(self.annotators_total / self.items_exported, 6) if self.items_exported else None,
            "agreement": {
                "items_with_figure": self.agreement_n,
                "single_rater_items": self.single_rater,
                "mean": round(self.agreement_sum / self.agreement_n, 6) if self.agreement_n else None,
                "min": round(self.agreement_min, 6) if self.agreement_min is not None else None,
            },
        }


def _evidence_line(ev: ItemEvidence, split: str, options: ExportOptions) -> bytes:
    out: dict = {"item_id": ev.item_id, "external_id": ev.external_id, "split": split}
    if ev.preference is not None:
        p = ev.preference
        out["preference"] = {
            "method": p.method, "groups": p.groups,  # tuples: the same JSON arrays
            "scores": {str(k): round(v, 6) for k, v in sorted(p.scores.items())},
            "agreement": None if p.agreement is None else round(p.agreement, 6), "votes": p.votes,
            "label_source": ev.preference_source,
        }
    if ev.prompt_safety is not None or ev.response_safety:
        out["safety"] = {
            "label_source": ev.safety_source,
            "prompt": None if ev.prompt_safety is None else {
                "label": ev.prompt_safety.label, "categories": list(ev.prompt_safety.categories),
                "counts": ev.prompt_safety.counts, "agreement": _round(ev.prompt_safety.agreement),
            },
            "responses": {
                str(rid): {"label": c.label, "categories": list(c.categories), "counts": c.counts,
                           "agreement": _round(c.agreement)}
                for rid, c in ev.response_safety.items()
            },
        }
    used = ev.safety_records if options.format.startswith("guard") else ev.preference_records
    if ev.provenance is not None:
        out["provenance"] = ev.provenance
    out["records"] = [r.raw(ev.provenance) for r in used]
    return orjson.dumps(out) + b"\n"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def remove_abandoned_staging(out_dir: Path) -> list[Path]:
    """Remove staging folders of ``out_dir`` left by export processes that died (SIGKILL, OOM).

    A staging folder is named ``.<out>.partial-<host>-<pid>`` (``.<out>.partial-<pid>`` before);
    one whose process is gone on this host is removed. Another host's, or a live process's, is left
    alone: it may be an export still running. Returns what was removed.
    """
    from annotation.jobs import claimant_is_gone

    removed: list[Path] = []
    prefix = f".{out_dir.name}.partial-"
    if not out_dir.parent.is_dir():
        return removed
    host = socket.gethostname()
    for path in out_dir.parent.glob(f"{prefix}*"):
        tail = path.name[len(prefix):]
        owner = tail if "-" in tail else f"{host}-{tail}"
        owner_host, _, pid = owner.rpartition("-")
        if not path.is_dir() or not pid.isdigit() or owner_host != host:
            continue
        if claimant_is_gone(f"{owner_host}:{pid}", None, stale_after=timedelta(0)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def run_export(
    *,
    project,
    options: ExportOptions,
    out_dir: Path,
    progress: Callable[[int, int, int], None] | None = None,
) -> dict:
    """Write the export into ``out_dir`` (replacing it) and return the manifest.

    Files are written to a sibling staging folder and moved into place at the end, so a failed or
    empty export never leaves a half-written dataset where a good one is expected. Raises
    :class:`ExportEmptyError` when no row qualifies.
    """
    from exports.card import write_card_and_manifest

    out_dir = Path(out_dir)
    remove_abandoned_staging(out_dir)
    tax = taxonomy_context(project)
    order = tax.order
    edit_format = options.format in EDIT_FORMATS
    tokenizer = None
    edit_stats = None
    chunk_source: Generator[list[Any], None, None]
    if edit_format:
        schema = edit_schema(options)
        total = edit_items_query(project=project, options=options).count()
        tok_info = None
        if options.format == "salt":
            tokenizer, tok_info = load_tokenizer_cached(options.tokenizer)
        edit_stats = EditStats(tokenizer=tok_info)
        chunk_source = iter_edit_chunks(project=project, options=options)
    else:
        schema = schema_for(options)
        total = item_ids_query(project=project, options=options).count()
        chunk_source = iter_chunks(project=project, options=options)
    # made after the tokenizer loads: a missing tokenizer leaves no staging folder behind
    staging = out_dir.parent / f".{out_dir.name}.partial-{socket.gethostname()}-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    writers: dict[str, SplitWriter] = {}
    stats = Stats()
    split_for = splitter(options)
    ev: Any  # ItemEvidence; EditEvidence for the edit formats
    groups = split_groups(project)  # edit rows take their original item's group (ev.item_id)
    try:
        chunks_done = 0
        # closing(): the prefetch thread is stopped and joined here, on every path (a writer error
        # included), not later by the garbage collector.
        with (
            open(staging / "evidence.jsonl", "wb") as evidence_file,
            _cyclic_gc_paused(),
            closing(chunk_source) as chunks,
        ):
            evidence_write = evidence_file.write
            for chunk in chunks:
                for ev in chunk:
                    stats.items_seen += 1
                    try:
                        if edit_format:
                            rows = edit_rows_for(ev, options, tokenizer)
                        else:
                            decide(ev, options, order)
                            rows = rows_for(ev, options, tax)
                    except Skip as skip:
                        stats.dropped[skip.reason] += 1
                        continue
                    group = groups.get(ev.item_id, ev.item_id)
                    split = split_for(group)
                    stats.split_groups[split].add(group)
                    writer = writers.get(split)
                    if writer is None:
                        writer = writers[split] = SplitWriter(folder=staging, split=split, schema=schema, outputs=options.outputs)
                    writer.write(rows)
                    stats.rows[split] += len(rows)
                    stats.items_per_split[split] += 1
                    if edit_stats is not None:
                        add_edit_item_stats(stats, ev, rows)
                        edit_stats.add(ev, rows)
                        evidence_write(orjson.dumps(edit_evidence_line(ev, split)) + b"\n")
                    else:
                        stats.add_item(ev, rows, options)
                        evidence_write(_evidence_line(ev, split, options))
                for writer in writers.values():
                    writer.flush_lines()
                del chunk
                chunks_done += 1
                if chunks_done % 32 == 0:
                    gc.collect(1)  # the young generations only, now and then: rows make no cycles
                if progress is not None:
                    progress(stats.items_seen, total, sum(stats.rows.values()))
        for writer in writers.values():
            writer.close()
        if not stats.rows:
            raise ExportEmptyError(_empty_message(stats, options, total))
        ordered_writers = [writers[s] for s in SPLITS if s in writers]
        if "hf" in options.outputs:
            write_hf_dataset(folder=staging, writers=ordered_writers)
        manifest = write_card_and_manifest(
            folder=staging, project=project, options=options, stats=stats.as_dict(), tax=tax,
            splits=[w.split for w in ordered_writers],
            edits=edit_stats.as_dict(options) if edit_stats is not None else None,
        )
    except BaseException:
        for writer in writers.values():
            try:
                writer.close()
            except Exception:  # already closed, or broken: the staging folder goes anyway
                pass
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    return manifest


def _empty_message(stats: Stats, options: ExportOptions, total: int) -> str:
    if total == 0:
        return "No rows to export: the project has no items" + (
            " that are not flagged." if options.exclude_flagged else "."
        )
    reasons = ", ".join(f"{reason}: {n}" for reason, n in stats.dropped.most_common())
    return (
        f"No rows to export: {stats.items_seen} item(s) read, none gave a {options.format} row "
        f"with source {options.source!r}. Items left out, by reason: {reasons or 'none'}. "
        "Loosen the filters, pick another source or format, or label more items."
    )
