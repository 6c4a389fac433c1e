"""python manage.py eval_guard --model ID|DIR (--data PATH | --export-dir DIR | --project SLUG)
[--taxonomy SLUG[:VERSION]] [--name NAME] [--json]

Evaluates a guard on labelled data: binary precision / recall / F1 at its threshold, AUROC, PR-AUC,
calibration error, over-refusal (safe examples flagged), per-category P/R/F1/support under the
DATA's taxonomy, a confusion matrix and the worst errors. With a registered guard (--model ID) the
report is stored on it under --name (default: the data's file or project name).

The data's taxonomy: --taxonomy; else the project's; else ``openai-moderation`` for OpenAI
moderation samples (an absent key is unknown for that category: masked, not safe); else the
guard's. When it is not the guard's own version, the guard's category probabilities are mapped
onto it through the stored crosswalk (P = max over the guard categories mapped to each; see
``annotation.crosswalk``), and the report names the mapping used.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from exports.guard import services
from exports.guard.management.commands._guard_args import taxonomy_version_from
from exports.guard.manifest import GuardManifestError, read_manifest
from exports.guard.ml.data import GuardDataError
from exports.guard.models import GuardModel


class Command(BaseCommand):
    help = "Evaluate a guard on labelled data and store the metrics on it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", required=True, help="a registered guard's id, or a guard folder")
        src = parser.add_mutually_exclusive_group(required=True)
        src.add_argument("--data", type=Path)
        src.add_argument("--export-dir", type=Path)
        src.add_argument("--project")
        parser.add_argument("--taxonomy", help="slug[:version] the data's categories are under (default: the project's; "
                            "openai-moderation for OpenAI moderation samples; else the guard's)")
        parser.add_argument("--needs-caution", choices=["defensive", "permissive"], default="defensive")
        parser.add_argument("--name", help="the name the evaluation is stored under")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts) -> None:
        guard_model = None
        if opts["model"].isdigit():
            guard_model = GuardModel.objects.select_related("taxonomy_version__taxonomy").filter(pk=int(opts["model"])).first()
            if guard_model is None:
                raise CommandError(f"No guard #{opts['model']}.")
            if not guard_model.usable:
                raise CommandError(f"{guard_model} is not ready (status {guard_model.status}).")
            folder = Path(guard_model.path)
        else:
            folder = Path(opts["model"]).resolve()
        try:
            read_manifest(folder)  # a clear error before any data is read
        except GuardManifestError as exc:
            raise CommandError(str(exc)) from None
        if opts["project"]:
            if not Project.objects.filter(slug=opts["project"]).exists():
                raise CommandError(f"No project with slug {opts['project']!r}.")
            spec = {"kind": "project", "slug": opts["project"], "needs_caution": opts["needs_caution"]}
            name = f"project:{opts['project']}"
        else:
            path = (opts["data"] or opts["export_dir"]).resolve()
            spec = {"kind": "file" if opts["data"] else "export", "path": str(path), "needs_caution": opts["needs_caution"]}
            name = path.name
        named = taxonomy_version_from(opts["taxonomy"]) if opts["taxonomy"] and not opts["project"] else None
        try:
            report = services.guard_evaluation_report(folder=folder, source_spec=spec, data_name=opts["name"] or name,
                                                      taxonomy_version=named)
        except GuardDataError as exc:
            raise CommandError(f"Bad evaluation data: {exc}") from None
        examples = report["data"]["examples"]
        if guard_model is not None:
            services.guard_model_store_evaluation(guard_model=guard_model, data_name=opts["name"] or name, report=report)
        if opts["json"]:
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
            return
        b = report["binary"]
        self.stdout.write(
            f"{examples} examples ({b['unsafe']} unsafe) at threshold {b['threshold']:.3f}: "
            f"precision {b['precision']:.3f}, recall {b['recall']:.3f}, F1 {b['f1']:.3f}, "
            f"AUROC {b['auroc'] if b['auroc'] is None else round(b['auroc'], 3)}, "
            f"PR-AUC {b['pr_auc'] if b['pr_auc'] is None else round(b['pr_auc'], 3)}, ECE {b['ece']:.3f}, "
            f"safe flagged {b['flagged_safe_share']}"
        )
        self.stdout.write(f"categories {report['data']['categories']}")
        for code, m in report["categories"].items():
            origin = f" <- {', '.join(m['mapped_from']) or 'no guard category'}" if "mapped_from" in m else ""
            if m.get("covered") is False:
                self.stdout.write(f"  {code}: not predicted (no guard category maps to it), support {m['support']} of {m['n']}")
            elif m["support"] or m["predicted"]:
                self.stdout.write(f"  {code}: P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} "
                                  f"support {m['support']} of {m['n']}{origin}")
