"""Read one chunk of items with their responses and current judgments, in a bounded number of
queries, and compute each item's consensus.

Reads never build model instances: an export streams millions of rows and the per-row cost of
model objects dominates otherwise. A chunk costs a fixed number of queries whatever its size (one
on PostgreSQL, four on other databases, plus one for jury decisions with the jury-confidence
filter).
"""
from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Generator
from dataclasses import dataclass, field

import orjson
from django.db import connection, connections
from django.db.models import Exists, OuterRef, Q

from annotation.models import Annotation, Assignment, Item, Response, ResponseSafety
from annotation.prompts import prompt_messages
from annotation.readahead import read_ahead
from exports.consensus import (
    PairVote,
    Preference,
    SafetyConsensus,
    SafetyVote,
    pairwise_majority,
    rank,
    safety_majority,
    select_records,
)
from exports.options import ExportOptions
from jury.selectors import jury_decision_confidences


@dataclass(slots=True)
class Record:
    """One current (not superseded) annotation, reduced to what consensus needs."""

    id: int
    source: str
    annotator_id: int | None
    ranking: list | None
    pair: tuple[int, int, str, int | None] | None  # (a, b, choice, strength)
    prompt_label: str
    prompt_categories: list
    response_labels: dict[int, tuple[str, list]] = field(default_factory=dict)
    jury_confidence: float | None = None
    source_detail: str = ""  # imported records: the import format (hh-rlhf, oasst, aegis, ...)

    def raw(self, provenance: dict | None = None) -> dict:
        """The record as written to evidence.jsonl (raw per-rater evidence beside the aggregate).
        An imported record says where it came from: ``import`` = its item's ``provenance`` (file,
        line, upstream id) with the record's own import format."""
        out: dict = {"annotation_id": self.id, "source": self.source, "annotator_id": self.annotator_id}
        if self.source == "import":
            out["import"] = {**(provenance or {}), "format": self.source_detail or None}
        if self.ranking is not None:
            out["ranking"] = self.ranking
        if self.pair is not None:
            out["pair"] = {"a": self.pair[0], "b": self.pair[1], "choice": self.pair[2], "strength": self.pair[3]}
        if self.prompt_label:
            out["prompt_label"] = self.prompt_label
            out["prompt_categories"] = self.prompt_categories
        if self.response_labels:
            out["response_labels"] = {str(k): {"label": v[0], "categories": v[1]} for k, v in sorted(self.response_labels.items())}
        if self.jury_confidence is not None:
            out["jury_confidence"] = self.jury_confidence
        return out


@dataclass(slots=True)
class ItemEvidence:
    item_id: int
    external_id: str
    prompt: list[dict]
    responses: dict[int, tuple[int, str]]  # response id -> (position, text)
    records: list[Record]
    metadata: dict = field(default_factory=dict)  # Item.metadata (guard-aegis reads the upstream Aegis row's id and sources)
    # consensus, filled by ``decide``
    preference: Preference | None = None
    pair_margin: float | None = None
    preference_source: str = ""
    preference_records: list[Record] = field(default_factory=list)
    prompt_safety: SafetyConsensus | None = None
    response_safety: dict[int, SafetyConsensus] = field(default_factory=dict)
    safety_source: str = ""
    safety_records: list[Record] = field(default_factory=list)
    # where an imported item came from: {"file", "line", "upstream_id"}; None for items made here
    provenance: dict | None = None


def _provenance(source_file: str, source_line: int | None, external_id: str, aegis_id: str | None) -> dict | None:
    """An item's import source. The upstream id is the source's own id: Aegis rows keep theirs in
    metadata (it is not unique per row), oasst and Tribunal files give the external id; HH-RLHF
    has none (file and line say which pair it was)."""
    if not source_file:
        return None
    # str(): SQLite's JSON key lookup turns a numeric-looking string ("12") into a number
    upstream = str(aegis_id) if aegis_id not in (None, "") else external_id or None
    return {"file": source_file, "line": source_line, "upstream_id": upstream}


def flagged_items_condition() -> Exists:
    """An ``Exists`` condition for items an annotator flagged (broken / harmful to view) in the
    annotation queue."""
    return Exists(Assignment.objects.filter(item=OuterRef("pk"), status=Assignment.Status.FLAGGED))


def item_ids_query(*, project, options: ExportOptions):
    """The items an ordinary (judgment-based) format reads: judge items only. Edit reviews are the
    edit formats' business (``exports.edits``)."""
    qs = Item.objects.filter(project=project, kind=Item.Kind.JUDGE)
    if options.exclude_flagged:
        qs = qs.exclude(flagged_items_condition())
        # has_key first: for a missing key "-> 'flagged' = true" is NULL, and NOT NULL drops the row
        qs = qs.exclude(Q(metadata__has_key="flagged") & Q(metadata__flagged=True))
    return qs


def iter_chunks(
    *, project, options: ExportOptions, chunk_size: int | None = None, prefetch: bool = True
) -> Generator[list[ItemEvidence], None, None]:
    """Yield the project's items in id order, ``chunk_size`` at a time, with their evidence.

    Keyset pagination (``id > last``) keeps every query bounded and the memory flat: only a
    bounded number of chunks is alive at a time. On PostgreSQL one query per chunk brings the
    chunk's items with their responses, current records and their response labels as one JSON
    document (the database does the joining in C; Python decodes it with one orjson call), and
    with ``prefetch`` the next chunk is read on a helper thread, over the same connection, while
    the caller works on the current one (the database and Python then run at the same time).
    Other databases (SQLite on a laptop) take the portable ORM path: four bounded queries per
    chunk. Both paths yield the same evidence (a test compares them).
    """
    size = chunk_size or options.chunk_size
    chunks: Generator[list[ItemEvidence], None, None]
    if connection.vendor == "postgresql":
        db = connections[connection.alias]  # this thread's wrapper, shared with the prefetch thread
        chunks = _chunks_postgres(project=project, options=options, size=size, db=db)
        if prefetch:
            # The helper reads chunk N+1 over this connection (psycopg serialises statements on
            # one connection), inside the caller's transaction, while the caller works on chunk N.
            chunks = read_ahead(chunks, depth=1, name="export-prefetch", shared_connection=db)
    else:
        chunks = _chunks_orm(project=project, options=options, size=size)
    with contextlib.closing(chunks):
        for chunk in chunks:
            if options.min_jury_confidence is not None:
                jury = {r.id: r for ev in chunk for r in ev.records if r.source == "jury"}
                if jury:
                    for aid, confidence in jury_decision_confidences(annotation_ids=list(jury)).items():
                        jury[aid].jury_confidence = confidence
            yield chunk


def _needs(options: ExportOptions) -> tuple[bool, bool]:
    need_safety = options.format.startswith("guard") or options.signal == "safety" or bool(options.categories)
    need_preference = not options.format.startswith("guard")
    return need_safety, need_preference


def _chunks_orm(*, project, options: ExportOptions, size: int) -> Generator[list[ItemEvidence], None, None]:
    need_safety, need_preference = _needs(options)
    base = item_ids_query(project=project, options=options).order_by("id")
    last = 0
    while True:
        rows = list(base.filter(id__gt=last).values_list(
            "id", "external_id", "prompt", "source_file", "source_line", "metadata"
        )[:size])
        if not rows:
            return
        last = rows[-1][0]
        ids = [r[0] for r in rows]
        evidence = {
            item_id: ItemEvidence(
                item_id, external_id, prompt_messages(prompt), {}, [], metadata or {},
                provenance=_provenance(source_file, source_line, external_id, (metadata or {}).get("aegis_id")),
            )
            for item_id, external_id, prompt, source_file, source_line, metadata in rows
        }
        for rid, item_id, position, text in (
            # imported and generated responses only: edits are never ordinary responses
            Response.objects.filter(item_id__in=ids).judged().order_by("item_id", "position")
            .values_list("id", "item_id", "position", "text")
        ):
            evidence[item_id].responses[rid] = (position, text)
        # The newest record of each correction chain; a retraction (an undo) withdraws its chain.
        # Per-juror and per-guard records are metrics raters, never judgments of an export.
        ann = Annotation.objects.filter(item_id__in=ids).judgments().current()
        if options.date_from:
            ann = ann.filter(created_at__date__gte=dt.date.fromisoformat(options.date_from))
        if options.date_to:
            ann = ann.filter(created_at__date__lte=dt.date.fromisoformat(options.date_to))
        if not need_safety:
            ann = ann.exclude(ranking__isnull=True, pair_choice="")
        records: dict[int, Record] = {}
        for (aid, item_id, source, annotator_id, ranking, pa_, pb_, choice, strength, plabel, pcats, detail) in ann.order_by("id").values_list(
            "id", "item_id", "source", "annotator_id", "ranking", "pair_a_id", "pair_b_id", "pair_choice",
            "pair_strength", "prompt_label", "prompt_categories", "source_detail",
        ):
            rec = Record(
                aid, source, annotator_id, ranking if need_preference else None,
                (pa_, pb_, choice, strength) if choice and need_preference else None,
                plabel, pcats or [], source_detail=detail,
            )
            records[aid] = rec
            evidence[item_id].records.append(rec)
        if need_safety and records:
            rs = ResponseSafety.objects.filter(annotation_id__in=list(records))
            for aid, rid, label, cats in rs.order_by("annotation_id", "response_id").values_list(
                "annotation_id", "response_id", "label", "categories"
            ):
                records[aid].response_labels[rid] = (label, cats or [])
        yield [evidence[i] for i in ids]


def _chunks_postgres(*, project, options: ExportOptions, size: int, db=None) -> Generator[list[ItemEvidence], None, None]:
    db = db if db is not None else connection
    need_safety, need_preference = _needs(options)
    item_t, resp_t = Item._meta.db_table, Response._meta.db_table
    ann_t, rs_t = Annotation._meta.db_table, ResponseSafety._meta.db_table
    # The newest record of each correction chain; a retraction (an undo) withdraws its chain.
    ann_where = ["a.item_id = i.id", Annotation.objects.current_sql("a"), Annotation.objects.judgments_sql("a")]
    params: list = []
    if options.date_from:
        ann_where.append("(a.created_at AT TIME ZONE 'UTC')::date >= %s")
        params.append(dt.date.fromisoformat(options.date_from))
    if options.date_to:
        ann_where.append("(a.created_at AT TIME ZONE 'UTC')::date <= %s")
        params.append(dt.date.fromisoformat(options.date_to))
    if not need_safety:
        ann_where.append("(a.ranking IS NOT NULL OR a.pair_choice <> '')")
    safety_agg = (
        f"(SELECT json_agg(json_build_array(x.response_id, x.label, x.categories) ORDER BY x.response_id) "
        f"FROM {rs_t} x WHERE x.annotation_id = a.id)" if need_safety else "NULL"
    )
    # judge items and their imported/generated responses only (edits are the edit formats' business);
    # the values are the models' own constants, not user input
    judged = ", ".join(f"'{origin.value}'" for origin in Response.JUDGED_ORIGINS)
    item_where = ["i.project_id = %s", "i.id > %s", f"i.kind = '{Item.Kind.JUDGE.value}'"]
    if options.exclude_flagged:
        item_where.append("NOT (i.metadata @> '{\"flagged\": true}'::jsonb)")
        assignment_t = Assignment._meta.db_table
        item_where.append(
            f"NOT EXISTS (SELECT 1 FROM {assignment_t} f WHERE f.item_id = i.id AND f.status = '{Assignment.Status.FLAGGED.value}')"
        )
    # The whole chunk is one JSON document: [[id, external_id, prompt, responses, records, file, line, metadata], ...]
    sql = f"""
        SELECT json_agg(json_build_array(i.id, i.external_id, i.prompt,
          (SELECT json_agg(json_build_array(r.id, r.position, r.text) ORDER BY r.position)
             FROM {resp_t} r WHERE r.item_id = i.id AND r.origin IN ({judged})),
          (SELECT json_agg(json_build_array(a.id, a.source, a.annotator_id, a.ranking, a.pair_a_id, a.pair_b_id,
                                            a.pair_choice, a.pair_strength, a.prompt_label, a.prompt_categories,
                                            {safety_agg}, a.source_detail) ORDER BY a.id)
             FROM {ann_t} a WHERE {' AND '.join(ann_where)}),
          i.source_file, i.source_line, i.metadata) ORDER BY i.id)::text
        FROM (SELECT * FROM {item_t} i WHERE {' AND '.join(item_where)} ORDER BY i.id LIMIT %s) i
    """
    loads = orjson.loads
    last = 0
    with db.cursor() as cur:
        while True:
            cur.execute(sql, [*params, project.pk, last, size])
            (doc,) = cur.fetchone()
            if doc is None:
                return
            rows = loads(doc)
            del doc
            last = rows[-1][0]
            chunk: list[ItemEvidence] = []
            append = chunk.append
            for item_id, external_id, prompt, responses, annotations, source_file, source_line, metadata in rows:
                ev = ItemEvidence(
                    item_id, external_id, prompt_messages(prompt),
                    {rid: (position, text) for rid, position, text in responses} if responses else {}, [],
                    metadata or {},
                    provenance=_provenance(source_file, source_line, external_id, (metadata or {}).get("aegis_id")),
                )
                if annotations:
                    records = ev.records
                    for (aid, source, annotator_id, ranking, pa_, pb_, choice, strength, plabel, pcats, safety,
                         detail) in annotations:
                        rec = Record(
                            aid, source, annotator_id, ranking if need_preference else None,
                            (pa_, pb_, choice, strength) if choice and need_preference else None,
                            plabel, pcats or [], source_detail=detail,
                        )
                        if safety:
                            rec.response_labels = {rid: (label, cats or []) for rid, label, cats in safety}
                        records.append(rec)
                append(ev)
            del rows
            yield chunk


def decide(ev: ItemEvidence, options: ExportOptions, category_order: dict[str, int]) -> None:
    """Fill in the item's consensus (preference and/or safety) under the export's options."""
    if not options.format.startswith("guard"):
        _decide_preference(ev, options)
    if options.format.startswith("guard") or options.signal == "safety" or options.categories:
        _decide_safety(ev, options, category_order)


def _decide_preference(ev: ItemEvidence, options: ExportOptions) -> None:
    candidates = [r for r in ev.records if r.ranking is not None or r.pair is not None]
    chosen, source = select_records(candidates, options.source)
    ev.preference_records, ev.preference_source = chosen, source
    if not chosen:
        return
    known = ev.responses
    pair_votes: list[PairVote] = []
    votes: list[list[list[int]]] = []
    for r in chosen:
        ranking, pair = r.ranking, r.pair
        if ranking is not None:
            vote = [[rid for rid in group if rid in known] for group in ranking]
            vote = [g for g in vote if g]
            if vote:
                votes.append(vote)
        if pair is not None:
            a, b, choice, strength = pair
            if a in known and b in known:
                pair_votes.append(PairVote(a, b, choice, 0 if choice == "tie" else strength))
    if pair_votes and not votes and _one_pair(pair_votes):
        pc = pairwise_majority(pair_votes)
        if pc.winner is None:
            groups: tuple[tuple[int, ...], ...] = ((pc.a, pc.b),)
            scores = {pc.a: 0.0, pc.b: 0.0}
        else:
            assert pc.loser is not None  # a winner always has a loser
            groups = ((pc.winner,), (pc.loser,))
            scores = {pc.winner: 1.0, pc.loser: 0.0}  # won / lost; how much better is the margin
        ev.preference = Preference(
            "pairwise-majority", groups, scores, pc.votes, pc.agreement,
            {"decided_by": pc.decided_by, "votes_a": pc.votes_a, "votes_b": pc.votes_b, "votes_tie": pc.votes_tie},
        )
        ev.pair_margin = pc.margin if pc.winner is not None else None
        return
    for v in pair_votes:
        if v.choice == "tie":
            votes.append([[v.a, v.b]])
        else:
            winner, loser = (v.a, v.b) if v.choice == "a" else (v.b, v.a)
            votes.append([[winner], [loser]])
    if votes:
        ev.preference = rank(options.ranking_method, votes)


def _one_pair(pair_votes: list[PairVote]) -> bool:
    """Whether every vote is on the same unordered pair of responses."""
    first = pair_votes[0]
    a, b = first.a, first.b
    return all((v.a == a and v.b == b) or (v.a == b and v.b == a) for v in pair_votes)


def _decide_safety(ev: ItemEvidence, options: ExportOptions, category_order: dict[str, int]) -> None:
    candidates = [r for r in ev.records if r.prompt_label or r.response_labels]
    chosen, source = select_records(candidates, options.source)
    ev.safety_records, ev.safety_source = chosen, source
    prompt_votes = [SafetyVote(r.prompt_label, tuple(r.prompt_categories)) for r in chosen if r.prompt_label]
    if prompt_votes:
        ev.prompt_safety = safety_majority(
            prompt_votes, needs_caution=options.needs_caution, tie=options.safety_tie, category_order=category_order
        )
    per_response: dict[int, list[SafetyVote]] = defaultdict(list)
    for r in chosen:
        for rid, (label, cats) in r.response_labels.items():
            if rid in ev.responses:
                per_response[rid].append(SafetyVote(label, tuple(cats)))
    ev.response_safety = {
        rid: safety_majority(v, needs_caution=options.needs_caution, tie=options.safety_tie, category_order=category_order)
        for rid, v in sorted(per_response.items())
    }
