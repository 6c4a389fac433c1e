"""python manage.py export_dataset --project SLUG --format FORMAT --out PATH [filters]

Runs the export in this process (use the page or the API for a background job) and records it as
an Export row like any other. Exits non-zero with the reason when the options are bad or no row
qualifies; nothing is written then.
"""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from exports import services
from exports.consensus.rankings import RANKING_METHODS
from exports.consensus.safety import NEEDS_CAUTION_POLICIES, SAFETY_TIE_POLICIES
from exports.consensus.sources import SOURCE_POLICIES
from exports.models import Export
from exports.options import (
    FORMATS,
    PAIR_POLICIES,
    PRO_LAYOUTS,
    PRO_LENGTH_POLICIES,
    SIGNALS,
    STYLES,
    TIE_POLICIES,
    ExportOptionsError,
)


class Command(BaseCommand):
    help = "Export a project's consensus labels as a training-ready dataset (files + README.md + manifest.json)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", required=True, help=f"one of {', '.join(FORMATS)} (edit-dpo and salt: "
                                                            "reviewed synthetic edits)")
        parser.add_argument("--out", required=True, type=Path, help="output folder (created; must be empty or absent unless --overwrite)")
        parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
        parser.add_argument("--source", choices=SOURCE_POLICIES,
                            help="whose labels count (default human-with-jury-fallback: humans and imported labels, the jury where an item has none)")
        parser.add_argument("--ranking-method", choices=list(RANKING_METHODS),
                            help="how N-way rankings are aggregated into one consensus order (default borda)")
        parser.add_argument("--tie-policy", choices=TIE_POLICIES,
                            help="when one best/worst response must be picked among tied ones: skip the item (default), expand to every tied response, or take the first by source position")
        parser.add_argument("--needs-caution", choices=NEEDS_CAUTION_POLICIES,
                            help="what a needs-caution label counts as in safety consensus (default defensive: unsafe)")
        parser.add_argument("--safety-tie", choices=SAFETY_TIE_POLICIES,
                            help="a safe/unsafe vote tie: skip the item (default) or decide it as safe or unsafe")
        parser.add_argument("--style", choices=STYLES,
                            help="standard: prompts and completions as strings; conversational: lists of chat messages")
        parser.add_argument("--pro-layout", choices=PRO_LAYOUTS,
                            help="pro: the PRO reference code's prefix/suffix/reward columns (default); plain: prompt/responses/scores")
        parser.add_argument("--pro-length", type=int,
                            help="pro only: the ranking length N that --pro-length-policy applies (the PRO trainer needs one length)")
        parser.add_argument("--pro-length-policy", choices=PRO_LENGTH_POLICIES,
                            help="with --pro-length N: keep rankings of at-least N (default) or exactly N responses, or truncate those of at least N to the top N")
        parser.add_argument("--pair-policy", choices=PAIR_POLICIES,
                            help="which DPO pairs a ranking gives: best-vs-worst (default), all-ordered-pairs, or adjacent positions")
        parser.add_argument("--include-margin", action="store_true",
                            help="add a margin column to DPO rows: on [0, 1] from stated strengths or ranking positions, null where the source states none")
        parser.add_argument("--signal", choices=SIGNALS,
                            help="kto / d2o: good and bad from the preference consensus (default) or from response safety labels")
        parser.add_argument("--min-agreement", type=float,
                            help="keep items whose raters agree with the consensus at least this much (0..1); single-rater items have no figure and are left out")
        parser.add_argument("--min-annotators", type=int,
                            help="keep items with at least this many raters (e.g. 2 to leave out single-rater items)")
        parser.add_argument("--date-from", help="keep labels created on or after this day (YYYY-MM-DD, UTC)")
        parser.add_argument("--date-to", help="keep labels created on or before this day (YYYY-MM-DD, UTC)")
        parser.add_argument("--categories",
                            help="keep items labelled with any of these categories: codes, names or aliases, comma-separated (e.g. S1,Violence)")
        parser.add_argument("--min-jury-confidence", type=float,
                            help="leave out items decided by the LLM jury with a confidence below this (0..1)")
        parser.add_argument("--exclude-flagged", action="store_true",
                            help="leave out items an annotator flagged as broken or harmful to view")
        parser.add_argument("--split", help="train,validation,test shares adding up to 1, e.g. 0.8,0.1,0.1 (default 1,0,0); "
                            "by group: items sharing an oasst tree, first turn or exact prompt stay in one split")
        parser.add_argument("--seed", type=int, help="seed of the split (default 0): the same seed gives the same split")
        parser.add_argument("--outputs", help="comma-separated: jsonl,parquet,hf (default jsonl,parquet)")
        parser.add_argument("--chunk-size", type=int, help="items read from the database at a time (default 1000)")
        parser.add_argument("--tokenizer", help="salt: the tokenizer whose token ids are aligned, a packaged model "
                                                "(default smollm2-135m-instruct) or a Hugging Face folder")

    def handle(self, *args, **opts) -> None:
        project = Project.objects.filter(slug=opts["project"]).select_related("taxonomy_version__taxonomy").first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        out: Path = opts["out"].resolve()
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and not opts["overwrite"]:
            raise CommandError(f"{out} exists and is not empty; pass --overwrite to replace it.")
        keys = [
            "format", "source", "ranking_method", "tie_policy", "needs_caution", "safety_tie", "style", "pro_layout",
            "pro_length", "pro_length_policy",
            "pair_policy", "signal", "min_agreement", "min_annotators", "date_from", "date_to", "categories",
            "min_jury_confidence", "split", "seed", "outputs", "chunk_size", "tokenizer",
        ]
        raw = {k: opts[k] for k in keys if opts.get(k) is not None}
        if opts["include_margin"]:
            raw["include_margin"] = True
        if opts["exclude_flagged"]:
            raw["exclude_flagged"] = True
        try:
            export = services.export_request(project=project, options=raw, background=False, out_dir=out)
        except ExportOptionsError as exc:
            raise CommandError(str(exc)) from None
        finished = services.export_run(export_id=export.pk)
        if finished is None or finished.status != Export.Status.DONE:
            raise CommandError(finished.error if finished else "The export vanished.")
        assert finished.manifest is not None  # export_run stores the manifest with the DONE status
        counts = finished.manifest["counts"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Export #{finished.pk}: {counts['rows_total']} rows from {counts['items_exported']} items "
                f"({', '.join(f'{k} {v}' for k, v in counts['rows'].items())}) → {out}"
            )
        )
