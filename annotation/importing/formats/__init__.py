"""One parser per import format. Each turns numbered lines into normalised ``Record``s.

A parser never raises on bad input: it adds ``(line, reason)`` to the ``ErrorLog`` and moves on,
so that one run over a file lists every problem. Records carry the line they came from (for an
oasst tree, every record of the tree carries the tree's line).

Formats
-------
``tribunal``  own JSONL: ``{"id", "prompt", "responses", "metadata", "ranking"?, "preference"?,
              "safety"?}`` (see ``parse_tribunal_object`` for the optional judgment keys).
``csv``       the same columns as CSV: ``id,prompt,responses,metadata`` (+ optional ``ranking``,
              ``preference``, ``safety``); ``responses``/``metadata``/judgments are JSON in a cell.
``hh-rlhf``   Anthropic HH-RLHF ``{"chosen", "rejected"}`` transcripts (``.jsonl`` or ``.jsonl.gz``).
``oasst``     OpenAssistant ``message_tree`` JSONL (one tree a line).
``csv-raters`` any CSV with one label column per rater, read through a column mapping given with
              the import (``options={"mapping": ...}``; see ``csv_raters``): one imported annotation
              per rater with the rater's id.
``aegis``     Aegis 2.0 rows (CSV or JSONL): ``prompt, response, prompt_label, response_label,
              violated_categories``; or the shared subset layout ``id, prompt, category, domain,
              task, instruct_response`` (an unsafe prompt with that category and a safe reply).
Layout: ``records`` holds what every parser shares (``Record``, ``ParseContext``, ``CategoryMap``,
the field checks); ``lines`` turns numbered lines into JSON objects or CSV rows; one module per
format. ``PARSERS`` maps a format name to its parser.
"""
from __future__ import annotations

from annotation.importing.formats.aegis import parse_aegis
from annotation.importing.formats.csv_raters import RaterColumns, parse_csv_raters, rater_columns
from annotation.importing.formats.hh_rlhf import hh_split, parse_hh_rlhf
from annotation.importing.formats.lines import csv_rows, guarded, json_objects
from annotation.importing.formats.oasst import parse_oasst
from annotation.importing.formats.records import (
    MAX_EXTERNAL_ID,
    MAX_MODEL_NAME,
    MAX_RESPONSES,
    ROLES,
    SAFETY_LABELS,
    CategoryMap,
    ParseContext,
    Rating,
    Record,
    RecordError,
    ResponseIn,
    json_error,
    safety_label,
)
from annotation.importing.formats.tribunal import parse_tribunal, parse_tribunal_object
from annotation.importing.formats.tribunal_csv import parse_csv

PARSERS = {
    "tribunal": parse_tribunal,
    "csv": parse_csv,
    "hh-rlhf": parse_hh_rlhf,
    "oasst": parse_oasst,
    "aegis": parse_aegis,
    "csv-raters": parse_csv_raters,
}

__all__ = [
    "MAX_EXTERNAL_ID", "MAX_MODEL_NAME", "MAX_RESPONSES", "PARSERS", "ROLES", "SAFETY_LABELS", "CategoryMap",
    "ParseContext", "Rating", "RaterColumns", "Record", "RecordError", "ResponseIn", "csv_rows", "guarded", "hh_split", "json_error",
    "json_objects", "parse_aegis", "parse_csv", "parse_csv_raters", "parse_hh_rlhf", "parse_oasst", "parse_tribunal",
    "parse_tribunal_object", "rater_columns", "safety_label",
]
