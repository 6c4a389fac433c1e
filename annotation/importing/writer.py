"""Pass 2 of an import: write planned records, one chunk at a time, inside the caller's transaction.

PostgreSQL: ids are taken from the tables' own sequences up front (``nextval`` over
``generate_series``), so every row of a chunk, and every reference between rows (response →
item, ranking → response ids, safety → annotation), is known before anything is sent; then each
table gets one ``COPY ... FROM STDIN``. That is several times faster than INSERTs and keeps the
ids consistent with what Django would have allocated. Other databases (SQLite, the laptop default)
use ``bulk_create``, which returns the new primary keys there.
"""
from __future__ import annotations

import hashlib
from datetime import datetime

import orjson
from django.db import connection

from annotation.importing.formats import Rating, Record
from annotation.importing.formats.records import judgment_fingerprint
from annotation.models import Annotation, ImportBatch, Item, Response, ResponseSafety


def content_hash(record: Record) -> str:
    """sha256 of the canonical JSON of (prompt messages, response texts in order): the dedup key."""
    payload = orjson.dumps(
        [record.prompt, [r.text for r in record.responses]], option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(payload).hexdigest()


def _json(value) -> str:
    return orjson.dumps(value).decode()


# The columns each COPY fills. Nothing in the database supplies defaults for a column Django
# manages, so any other column gets its field default (see ``_extra_columns``).
ITEM_COLUMNS = (
    "id", "project_id", "external_id", "prompt", "metadata", "content_hash", "import_batch_id",
    "source_file", "source_line", "priority", "is_gold", "gold_answer", "created_at",
)
RESPONSE_COLUMNS = ("id", "item_id", "position", "text", "model_name", "origin", "parent_id", "metadata", "created_at")
ANNOTATION_COLUMNS = (
    "id", "project_id", "item_id", "source", "annotator_id", "source_detail", "import_batch_id", "ranking",
    "pair_a_id", "pair_b_id", "pair_choice", "pair_strength", "prompt_label", "prompt_categories",
    "taxonomy_version_id", "rationale", "confidence", "principles_conflicted", "shown_order", "duration_ms",
    "supersedes_id", "idempotency_key", "created_at", "rater",
)
SAFETY_COLUMNS = ("id", "annotation_id", "response_id", "label", "categories")


def _extra_columns(model, columns: tuple[str, ...]) -> tuple[tuple[str, ...], tuple]:
    """Columns of ``model`` that the writer does not fill itself, with their defaults.

    Other parts of the project may add fields (e.g. an annotation's ``retracted`` flag); those with
    a plain default (or nullable) get it, so the COPY stays complete. Anything else is a loud error,
    never a silently wrong row. Unknown explicit columns are an error too.
    """
    fields = {f.column: f for f in model._meta.concrete_fields}
    unknown = set(columns) - set(fields)
    if unknown:
        raise RuntimeError(f"importing.writer names columns {sorted(unknown)} that {model.__name__} lacks")
    names, values = [], []
    for column, f in fields.items():
        if column in columns:
            continue
        if f.has_default():
            value = f.get_default()
        elif f.null:
            value = None
        else:
            raise RuntimeError(f"importing.writer cannot fill {model.__name__}.{f.name}: no default")
        if isinstance(value, (dict, list)):
            value = _json(value)
        elif value is not None and not isinstance(value, (bool, int, float, str)):
            raise RuntimeError(f"importing.writer cannot fill {model.__name__}.{f.name} with {value!r}")
        names.append(column)
        values.append(value)
    return tuple(names), tuple(values)


class ChunkWriter:
    """Writes chunks of ``(record, content_hash)`` for one batch. Counts what it wrote."""

    def __init__(self, *, batch: ImportBatch, taxonomy_version_id: int, source_file: str, now: datetime) -> None:
        self.batch = batch
        self.project_id = batch.project_id
        self.taxonomy_version_id = taxonomy_version_id
        self.source_file = source_file[:500]
        self.now = now
        self.items = self.responses = self.annotations = 0

    def write(self, planned: list[tuple[Record, str]]) -> None:
        if not planned:
            return
        if connection.vendor == "postgresql":
            self._write_copy(planned)
        else:
            self._write_orm(planned)
        self.items += len(planned)
        self.responses += sum(len(r.responses) for r, _ in planned)
        self.annotations += sum(r.annotation_count for r, _ in planned)

    def attach(self, pending: list[tuple[str, list[Rating], str]]) -> None:
        """Add named raters' judgments to items already stored (by content hash): an earlier import,
        or an earlier line of this file. A rater the item already has is left alone (pass 1 checked
        that it is the same judgment)."""
        if not pending:
            return
        digests = list({digest for digest, _, _ in pending})
        items = dict(
            Item.objects.filter(project_id=self.project_id, content_hash__in=digests).values_list("content_hash", "id")
        )
        positions = _imported_responses(list(items.values()))
        have = set(
            Annotation.objects.filter(item_id__in=list(items.values())).exclude(rater="").values_list("item_id", "rater")
        )
        rows: list[tuple[Rating, list[int], Annotation]] = []
        for digest, ratings, source_detail in pending:
            item_id = items[digest]
            rids = positions.get(item_id, [])
            for rating in ratings:
                if (item_id, rating.rater) in have:
                    continue
                have.add((item_id, rating.rater))
                rows.append((rating, rids, Annotation(
                    project_id=self.project_id, item_id=item_id, source=Annotation.Source.IMPORT, rater=rating.rater,
                    source_detail=source_detail, import_batch_id=self.batch.pk, created_at=self.now,
                    **self._annotation_fields(rating, rids),
                )))
        created = Annotation.objects.bulk_create([a for _, _, a in rows])
        ResponseSafety.objects.bulk_create([
            ResponseSafety(annotation_id=annotation.pk, response_id=rids[index], label=label, categories=codes)
            for (rating, rids, _), annotation in zip(rows, created)
            for index, label, codes in rating.response_safety
        ])
        self.annotations += len(created)

    # --- shared ---------------------------------------------------------------------------------

    def _annotation_fields(self, record: Record | Rating, response_ids: list[int]) -> dict:
        """The judgment columns of the imported annotation of ``record`` (or of one named rater's
        ``Rating``), with real response ids."""
        fields: dict = {"ranking": None, "pair_a_id": None, "pair_b_id": None, "pair_choice": "",
                        "pair_strength": None, "prompt_label": "", "prompt_categories": [],
                        "taxonomy_version_id": None}
        if record.ranking:
            fields["ranking"] = [[response_ids[i] for i in group] for group in record.ranking]
        if record.pair:
            a, b, choice, strength = record.pair
            fields.update(pair_a_id=response_ids[a], pair_b_id=response_ids[b], pair_choice=choice,
                          pair_strength=strength)
        if record.prompt_label or record.response_safety:
            fields["taxonomy_version_id"] = self.taxonomy_version_id
            fields["prompt_label"] = record.prompt_label
            fields["prompt_categories"] = record.prompt_categories
        return fields

    # --- PostgreSQL: COPY ------------------------------------------------------------------------

    _sequences: dict[str, str] = {}

    def _sequence(self, cursor, table: str) -> str:
        if table not in self._sequences:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            self._sequences[table] = cursor.fetchone()[0]
        return self._sequences[table]

    def _allocate(self, cursor, table: str, count: int) -> list[int]:
        if count == 0:
            return []
        cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [self._sequence(cursor, table), count])
        return [row[0] for row in cursor.fetchall()]

    def _write_copy(self, planned: list[tuple[Record, str]]) -> None:
        now, batch_id, project_id = self.now, self.batch.pk, self.project_id
        with connection.cursor() as cursor:
            item_ids = self._allocate(cursor, Item._meta.db_table, len(planned))
            response_ids = iter(self._allocate(cursor, Response._meta.db_table,
                                               sum(len(r.responses) for r, _ in planned)))
            annotation_ids = iter(self._allocate(cursor, Annotation._meta.db_table,
                                                 sum(r.annotation_count for r, _ in planned)))
            safety_ids = iter(self._allocate(cursor, ResponseSafety._meta.db_table, sum(
                len(j.response_safety) for r, _ in planned for j in _judgments(r)
            )))
            items, responses, annotations, safety = [], [], [], []
            for (record, digest), item_id in zip(planned, item_ids):
                items.append((
                    item_id, project_id, record.external_id, _json(record.prompt), _json(record.metadata), digest,
                    batch_id, self.source_file, record.line, 0, False, None, now,
                ))
                rids = []
                for position, resp in enumerate(record.responses):
                    rid = next(response_ids)
                    rids.append(rid)
                    responses.append((rid, item_id, position, resp.text, resp.model, "imported", None,
                                      _json(resp.metadata), now))
                for judgment in _judgments(record):
                    aid = next(annotation_ids)
                    f = self._annotation_fields(judgment, rids)
                    annotations.append((
                        aid, project_id, item_id, "import", None, record.source_detail, batch_id,
                        None if f["ranking"] is None else _json(f["ranking"]), f["pair_a_id"], f["pair_b_id"],
                        f["pair_choice"], f["pair_strength"], f["prompt_label"], _json(f["prompt_categories"]),
                        f["taxonomy_version_id"], "", None, False, None, None, None, "", now,
                        judgment.rater if isinstance(judgment, Rating) else "",
                    ))
                    for index, label, codes in judgment.response_safety:
                        safety.append((next(safety_ids), aid, rids[index], label, _json(codes)))
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            for model, columns, rows in (
                (Item, ITEM_COLUMNS, items), (Response, RESPONSE_COLUMNS, responses),
                (Annotation, ANNOTATION_COLUMNS, annotations), (ResponseSafety, SAFETY_COLUMNS, safety),
            ):
                if not rows:
                    continue
                extra_names, extra_values = _extra_columns(model, columns)
                sql = f'COPY {model._meta.db_table} ({", ".join(columns + extra_names)}) FROM STDIN'
                with raw.copy(sql) as copy:
                    if extra_names:
                        for row in rows:
                            copy.write_row(row + extra_values)
                    else:
                        for row in rows:
                            copy.write_row(row)

    # --- Other databases: bulk_create ------------------------------------------------------------

    def _write_orm(self, planned: list[tuple[Record, str]]) -> None:
        now = self.now
        items = Item.objects.bulk_create([
            Item(project_id=self.project_id, external_id=record.external_id, prompt=record.prompt,
                 metadata=record.metadata, content_hash=digest, import_batch_id=self.batch.pk,
                 source_file=self.source_file, source_line=record.line, created_at=now)
            for record, digest in planned
        ])
        responses = Response.objects.bulk_create([
            Response(item_id=item.pk, position=position, text=resp.text, model_name=resp.model,
                     origin=Response.Origin.IMPORTED, metadata=resp.metadata, created_at=now)
            for (record, _), item in zip(planned, items)
            for position, resp in enumerate(record.responses)
        ])
        it = iter(responses)
        per_record = [[next(it).pk for _ in record.responses] for record, _ in planned]
        pending = [
            (judgment, rids, Annotation(project_id=self.project_id, item_id=item.pk, source=Annotation.Source.IMPORT,
                                        source_detail=record.source_detail, import_batch_id=self.batch.pk,
                                        created_at=now, rater=judgment.rater if isinstance(judgment, Rating) else "",
                                        **self._annotation_fields(judgment, rids)))
            for (record, _), item, rids in zip(planned, items, per_record)
            for judgment in _judgments(record)
        ]
        created = Annotation.objects.bulk_create([a for _, _, a in pending])
        ResponseSafety.objects.bulk_create([
            ResponseSafety(annotation_id=annotation.pk, response_id=rids[index], label=label, categories=codes)
            for (judgment, rids, _), annotation in zip(pending, created)
            for index, label, codes in judgment.response_safety
        ])


def _judgments(record: Record) -> list[Record | Rating]:
    """What becomes an imported annotation of ``record``: its judgment without a rater id (if any),
    then one per named rater."""
    return ([record] if record.has_annotation else []) + list(record.ratings)


def _imported_responses(item_ids: list[int]) -> dict[int, list[int]]:
    """item id -> the ids of its imported responses in file order (what a record's indexes name)."""
    out: dict[int, list[int]] = {}
    rows = Response.objects.filter(item_id__in=item_ids, origin=Response.Origin.IMPORTED).order_by("item_id", "position")
    for item_id, rid in rows.values_list("item_id", "id"):
        out.setdefault(item_id, []).append(rid)
    return out


def stored_ratings(*, project_id: int, digests: list[str]) -> list[tuple[str, str, str]]:
    """``(content hash, rater, Rating.fingerprint)`` of the named raters' annotations already stored
    on the project's items with these content hashes (pass 1 compares a file's labels with them)."""
    if not digests:
        return []
    annotations = list(
        Annotation.objects.filter(project_id=project_id, item__content_hash__in=set(digests), source=Annotation.Source.IMPORT)
        .exclude(rater="")
        .values_list("id", "item_id", "item__content_hash", "rater", "ranking", "pair_a_id", "pair_b_id",
                     "pair_choice", "pair_strength", "prompt_label", "prompt_categories")
    )
    if not annotations:
        return []
    position = {
        rid: n for rids in _imported_responses(list({row[1] for row in annotations})).values()
        for n, rid in enumerate(rids)
    }
    safety: dict[int, list[tuple[int, str, list[str]]]] = {}
    for aid, rid, label, codes in ResponseSafety.objects.filter(
        annotation_id__in=[row[0] for row in annotations]
    ).values_list("annotation_id", "response_id", "label", "categories"):
        safety.setdefault(aid, []).append((position.get(rid, -1), label, codes))
    out = []
    for aid, _item, digest, rater, ranking, pair_a, pair_b, choice, strength, prompt_label, cats in annotations:
        fingerprint = judgment_fingerprint(
            ranking=[[position.get(r, -1) for r in group] for group in ranking] if ranking else None,
            pair=(position.get(pair_a, -1), position.get(pair_b, -1), choice, strength) if choice else None,
            prompt_label=prompt_label, prompt_categories=cats, response_safety=safety.get(aid, []),
        )
        out.append((digest, rater, fingerprint))
    return out
