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
from exports.options import FORMATS, PAIR_POLICIES, PRO_LAYOUTS, SIGNALS, STYLES, TIE_POLICIES, ExportOptionsError


class Command(BaseCommand):
    help = "Export a project's consensus labels as a training-ready dataset (files + README.md + manifest.json)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", required=True, help=f"one of {', '.join(FORMATS)} (edit-dpo and salt: "
                                                            "reviewed synthetic edits)")
        parser.add_argument("--out", required=True, type=Path, help="output folder (created; must be empty or absent unless --overwrite)")
        parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
        parser.add_argument("--source", choices=SOURCE_POLICIES)
        parser.add_argument("--ranking-method", choices=list(RANKING_METHODS))
        parser.add_argument("--tie-policy", choices=TIE_POLICIES)
        parser.add_argument("--needs-caution", choices=NEEDS_CAUTION_POLICIES)
        parser.add_argument("--safety-tie", choices=SAFETY_TIE_POLICIES)
        parser.add_argument("--style", choices=STYLES)
        parser.add_argument("--pro-layout", choices=PRO_LAYOUTS)
        parser.add_argument("--pair-policy", choices=PAIR_POLICIES)
        parser.add_argument("--include-margin", action="store_true")
        parser.add_argument("--signal", choices=SIGNALS)
        parser.add_argument("--min-agreement", type=float)
        parser.add_argument("--min-annotators", type=int)
        parser.add_argument("--date-from", help="YYYY-MM-DD, inclusive")
        parser.add_argument("--date-to", help="YYYY-MM-DD, inclusive")
        parser.add_argument("--categories", help="category codes, comma-separated")
        parser.add_argument("--min-jury-confidence", type=float)
        parser.add_argument("--exclude-flagged", action="store_true")
        parser.add_argument("--split", help="train,validation,test shares, e.g. 0.8,0.1,0.1")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--outputs", help="comma-separated: jsonl,parquet,hf (default jsonl,parquet)")
        parser.add_argument("--chunk-size", type=int)
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
