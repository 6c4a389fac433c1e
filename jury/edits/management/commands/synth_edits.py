"""python manage.py synth_edits --project SLUG --editor SPEC --direction improve|corrupt [options] [--wait | --inline]"""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.models import Project
from jury.edits import services
from jury.edits.models import Direction, EditRun, EditTemplate
from jury.models import ModelSpec


class Command(BaseCommand):
    help = ("Start a synthetic-edit run (SYNFAC-EDIT) on the worker (gpu queue); --wait follows it, "
            "--inline runs it in this process (no worker needed).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--editor", required=True, help="model spec name (e.g. smol)")
        parser.add_argument("--direction", required=True, choices=Direction.values)
        parser.add_argument("--template", help="template id, or name (its newest version); default: the direction's")
        parser.add_argument("--instruction", default="", help="improve: the instruction; corrupt: the flaw to plant")
        parser.add_argument("--feedback", default=",".join(services.FEEDBACK_SOURCES),
                            help="improve: comma-separated sources (rationales,categories,principles,instruction)")
        parser.add_argument("--max-extra-words", type=int, default=None)
        parser.add_argument("--min-ratio", type=float, default=None)
        parser.add_argument("--max-ratio", type=float, default=None)
        parser.add_argument("--limit", type=int, default=None, help="most responses to edit")
        parser.add_argument("--item", type=int, action="append", dest="item_ids", help="only this item (repeatable)")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--max-new-tokens", type=int, default=None)
        parser.add_argument("--wait", action="store_true", help="wait for the worker to finish the run")
        parser.add_argument("--inline", action="store_true", help="run it here, in this process")
        parser.add_argument("--timeout", type=float, default=0, help="with --wait: give up after N seconds (0 = never)")

    def handle(self, *args, **opts) -> None:
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project {opts['project']!r}.")
        editor = ModelSpec.objects.filter(name=opts["editor"]).first()
        if editor is None:
            names = ", ".join(ModelSpec.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No model spec {opts['editor']!r}; specs: {names}.")
        template = None
        if opts["template"]:
            found = (EditTemplate.objects.filter(pk=int(opts["template"])) if opts["template"].isdigit()
                     else EditTemplate.objects.filter(name=opts["template"]).order_by("-version"))
            template = found.first()
            if template is None:
                raise CommandError(f"No template {opts['template']!r}.")
        options = {
            "feedback": [s.strip() for s in opts["feedback"].split(",") if s.strip()],
            "instruction": opts["instruction"], "max_extra_words": opts["max_extra_words"],
            "min_ratio": opts["min_ratio"], "max_ratio": opts["max_ratio"], "limit": opts["limit"],
            "item_ids": opts["item_ids"], "batch_size": opts["batch_size"], "seed": opts["seed"],
            "max_new_tokens": opts["max_new_tokens"],
        }
        try:
            with transaction.atomic():
                run = services.edit_run_start(project=project, editor=editor, direction=opts["direction"],
                                              template=template, options=options, enqueue=not opts["inline"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"edit run #{run.pk}: {run.direction} of {run.total} responses by {editor.name} "
                          f"({run.template.label}) {'running here' if opts['inline'] else 'queued'}")
        if opts["inline"]:
            services.edit_run_process(run_id=run.pk)
        elif not opts["wait"]:
            return
        started, last = time.monotonic(), -1
        while True:
            run.refresh_from_db()
            if run.processed != last:
                self.stdout.write(f"  {run.processed}/{run.total} ({round(100 * run.progress)}%) {run.status}")
                last = run.processed
            if not run.is_active:
                break
            if opts["timeout"] and time.monotonic() - started > opts["timeout"]:
                raise CommandError(f"run #{run.pk} still {run.status} after {opts['timeout']:.0f}s (it keeps running)")
            time.sleep(1.0)
        self.stdout.write(f"run #{run.pk} {run.status}: {run.kept_count} kept for review, "
                          f"{run.discarded_count} discarded ({run.failed_count} unparseable)")
        if run.status != EditRun.Status.DONE:
            raise CommandError(f"run #{run.pk} ended {run.status}: {run.error}")
