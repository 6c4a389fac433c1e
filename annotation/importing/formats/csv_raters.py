"""``csv-raters``: any CSV with one label column per rater, read through a column mapping.

Public data sets with several annotators put each annotator's label in a column of its own
(HateCheck: ``label_1`` .. ``label_10``, an empty cell where that annotator did not rate the case).
The mapping, given with the import (``import_file(options={"mapping": {...}})``, ``--mapping
FILE.json``, the import page's "Column mapping" box or the API's ``mapping`` field), says which
column is what::

    {
      "prompt": "test_case",                  # required: the column with the prompt text
      "id": "case_id",                        # optional: the external id column
      "responses": ["response"],              # optional: response text columns, in order
      "raters": {"label_1": "hc1", "label_2": "hc2"},   # required: column -> rater id
                                              #   (or a list of columns: the rater id is the column name)
      "target": "prompt",                     # what the labels judge: "prompt" (default) or "response"
                                              #   (then exactly one response column)
      "labels": {"hateful": {"label": "unsafe", "categories": ["Hate"]},
                 "non-hateful": "safe"},      # optional: cell value -> label (and categories);
                                              #   default: safe / needs_caution / unsafe as written
      "metadata": ["functionality"]           # optional: columns kept in the item's metadata
                                              #   (default: every column not mapped above)
    }

Each rater's non-empty cell becomes one imported annotation of the item with that rater id; an
empty cell means the rater did not judge the item. A cell value the ``labels`` map does not know is
an error of its line.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from annotation.importing.formats.lines import csv_rows
from annotation.importing.formats.records import (
    MAX_RATER,
    ParseContext,
    Rating,
    Record,
    RecordError,
    ResponseIn,
    check_json,
    check_text,
    checked_external_id,
    safety_label,
)

MAPPING_KEYS = {"prompt", "id", "responses", "raters", "target", "labels", "metadata"}


@dataclass(frozen=True)
class RaterColumns:
    """A checked mapping (see the module docstring)."""

    prompt: str
    id: str
    responses: tuple[str, ...]
    raters: tuple[tuple[str, str], ...]  # (column, rater id)
    target: str
    labels: dict[str, tuple[str, tuple[str, ...]]] | None  # normalised cell -> (label, category names)
    metadata: tuple[str, ...] | None

    def columns(self) -> set[str]:
        named = {self.prompt, *self.responses, *(c for c, _ in self.raters), *(self.metadata or ())}
        if self.id:
            named.add(self.id)
        return named


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def rater_columns(mapping: Any) -> RaterColumns:
    """Check a mapping; raises ``ValueError`` saying what is wrong with it."""
    if not isinstance(mapping, dict):
        raise ValueError("the column mapping must be a JSON object (see the README, section Several raters)")
    unknown = sorted(set(mapping) - MAPPING_KEYS)
    if unknown:
        raise ValueError(f"the column mapping has unknown key(s) {', '.join(unknown)}; "
                         f"expected {', '.join(sorted(MAPPING_KEYS))}")

    def column(key: str, *, required: bool = False) -> str:
        value = mapping.get(key)
        if value in (None, ""):
            if required:
                raise ValueError(f"the column mapping needs {key!r}: the column with the {key}")
            return ""
        if not isinstance(value, str):
            raise ValueError(f"mapping {key!r} must be a column name")
        return value.strip()

    def columns(key: str) -> tuple[str, ...]:
        value = mapping.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ValueError(f"mapping {key!r} must be a list of column names")
        return tuple(v.strip() for v in value)

    prompt, id_column, responses = column("prompt", required=True), column("id"), columns("responses")
    raw_raters = mapping.get("raters")
    if isinstance(raw_raters, list) and all(isinstance(c, str) and c.strip() for c in raw_raters):
        raters = [(c.strip(), c.strip()) for c in raw_raters]
    elif isinstance(raw_raters, dict) and all(
        isinstance(c, str) and c.strip() and isinstance(r, (str, int)) and not isinstance(r, bool) and str(r).strip()
        for c, r in raw_raters.items()
    ):
        raters = [(c.strip(), str(r).strip()) for c, r in raw_raters.items()]
    else:
        raise ValueError('mapping "raters" must map each label column to a rater id ({"label_1": "r1", ...}) '
                         "or list the label columns")
    if not raters:
        raise ValueError('mapping "raters" names no column')
    ids = [r for _, r in raters]
    if len(set(ids)) != len(ids):
        raise ValueError('mapping "raters" gives two columns the same rater id')
    if any(len(r) > MAX_RATER for r in ids):
        raise ValueError(f"a rater id is longer than {MAX_RATER} characters")
    target = mapping.get("target") or "prompt"
    if target not in ("prompt", "response"):
        raise ValueError('mapping "target" must be "prompt" or "response"')
    if target == "response" and len(responses) != 1:
        raise ValueError('mapping "target": "response" needs exactly one column in "responses"')
    labels = None
    if mapping.get("labels") is not None:
        raw_labels = mapping["labels"]
        if not isinstance(raw_labels, dict) or not raw_labels:
            raise ValueError('mapping "labels" must map cell values to labels ({"hateful": "unsafe", ...})')
        labels = {}
        for value, spec in raw_labels.items():
            if isinstance(spec, str):
                spec = {"label": spec}
            if not isinstance(spec, dict) or set(spec) - {"label", "categories"}:
                raise ValueError(f'mapping "labels" for {value!r} must be a label or {{"label", "categories"}}')
            try:
                label = safety_label(spec.get("label"), f'mapping "labels" for {value!r}')
            except RecordError as exc:
                raise ValueError(str(exc)) from None
            cats = spec.get("categories") or []
            if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
                raise ValueError(f'mapping "labels" for {value!r}: categories must be a list of names')
            labels[_norm(str(value))] = (label, tuple(cats))
    metadata = columns("metadata") if mapping.get("metadata") is not None else None
    mapped = RaterColumns(prompt=prompt, id=id_column, responses=responses, raters=tuple(raters), target=target,
                          labels=labels, metadata=metadata)
    named = [prompt, *responses, *(c for c, _ in raters)] + ([id_column] if id_column else [])
    if len(set(named)) != len(named):
        raise ValueError("the column mapping uses one column for two things")
    return mapped


def parse_csv_raters(lines, ctx: ParseContext) -> Iterator[Record]:
    try:
        mapping = rater_columns(ctx.options.get("mapping"))
    except ValueError as exc:
        ctx.errors.add(1, f"column mapping: {exc}")
        return
    rows = csv_rows(lines, ctx)
    first = True
    labels: dict[str, tuple[str, list[str]]] | None = None
    for line, row in rows:
        if first:
            first = False
            missing = sorted(mapping.columns() - set(row))
            if missing:
                ctx.errors.add(1, f"the CSV has no column(s) {', '.join(map(repr, missing))} named in the mapping")
                for _ in rows:  # count the records, report nothing more
                    pass
                return
            if mapping.labels is not None:
                try:
                    labels = {v: (label, ctx.categories.resolve(names)) for v, (label, names) in mapping.labels.items()}
                except RecordError as exc:
                    ctx.errors.add(1, f'column mapping "labels": {exc}')
                    return
        try:
            yield _record(row, line, mapping, labels)
        except RecordError as exc:
            ctx.errors.add(line, str(exc))


def _record(row: dict, line: int, mapping: RaterColumns, labels) -> Record:
    prompt = row[mapping.prompt]
    if not prompt.strip():
        raise RecordError(f"missing prompt (column {mapping.prompt!r} is empty)")
    responses = []
    for column in mapping.responses:
        text = row[column]
        if text.strip():
            responses.append(ResponseIn(text=check_text(text, f"column {column}")))
    ratings = []
    for column, rater in mapping.raters:
        cell = row[column].strip()
        if not cell:
            continue  # this rater did not judge the item
        if labels is None:
            label, codes = safety_label(cell, f"column {column}"), []
        elif _norm(cell) in labels:
            label, codes = labels[_norm(cell)]
        else:
            known = ", ".join(repr(v) for v in mapping.labels or {})
            raise RecordError(f"column {column}: unknown label {cell!r} (the mapping knows {known})")
        if mapping.target == "prompt":
            ratings.append(Rating(rater=rater, prompt_label=label, prompt_categories=list(codes)))
        else:
            if not responses:
                raise RecordError(f"column {column} labels the response, but column {mapping.responses[0]!r} is empty")
            ratings.append(Rating(rater=rater, response_safety=[(0, label, list(codes))]))
    meta_columns = mapping.metadata if mapping.metadata is not None else [
        c for c in row if c and c not in mapping.columns()
    ]
    return Record(
        line=line,
        prompt=[{"role": "user", "content": check_text(prompt, f"column {mapping.prompt}")}],
        responses=responses,
        external_id=checked_external_id(row[mapping.id]) if mapping.id else "",
        metadata=check_json({c: row[c] for c in meta_columns if row[c] != ""}, "metadata"),
        source_detail="csv-raters",
        ratings=ratings,
    )
