"""python manage.py run_jury --project SLUG --jury NAME --task safety|preference|principles [--wait]"""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.models import Project
from jury import selectors, services
from jury.models import Jury, JuryRun, Task


class Command(BaseCommand):
    help = "Start a jury run on the worker (gpu queue); --wait follows it to the end."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--jury", required=True, help="jury name (e.g. default)")
        parser.add_argument("--task", required=True, choices=Task.values)
        parser.add_argument("--chunk-size", type=int, default=None)
        parser.add_argument("--include-edits", action="store_true",
                            help="also judge synthetic edits (responses with origin edited / human_edited)")
        parser.add_argument("--wait", action="store_true", help="wait for the run to finish and print the outcome")
        parser.add_argument("--timeout", type=float, default=0, help="with --wait: give up after N seconds (0 = never)")

    def handle(self, *args, **opts) -> None:
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project {opts['project']!r}.")
        jury = Jury.objects.filter(name=opts["jury"]).first()
        if jury is None:
            names = ", ".join(Jury.objects.values_list("name", flat=True)) or "none (run load_default_jury)"
            raise CommandError(f"No jury {opts['jury']!r}; juries: {names}.")
        try:
            with transaction.atomic():
                run = services.jury_run_start(project=project, jury=jury, task=opts["task"], chunk_size=opts["chunk_size"],
                                               include_edits=opts["include_edits"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"jury run #{run.pk}: {run.task} of {run.item_count} items by {jury.name} "
                          f"({run.verdicts_expected} verdicts, {run.chunk_count} chunks) queued")
        if not opts["wait"]:
            return
        started, last = time.monotonic(), -1
        while True:
            run.refresh_from_db()
            progress = selectors.run_progress(run=run)
            if progress.done != last:
                self.stdout.write(f"  {progress.done}/{progress.expected} verdicts ({progress.percent}%) {run.status}")
                last = progress.done
            if not run.is_active:
                break
            if opts["timeout"] and time.monotonic() - started > opts["timeout"]:
                raise CommandError(f"run #{run.pk} still {run.status} after {opts['timeout']:.0f}s (it keeps running)")
            time.sleep(1.0)
        self.stdout.write(f"run #{run.pk} {run.status}: {run.decisions_count} decisions, {run.escalated_count} escalated, "
                          f"{run.error_count} errors")
        if run.status != JuryRun.Status.DONE:
            for e in run.errors:
                self.stderr.write(f"  chunk {e.get('chunk')}: {e.get('error')}")
            raise CommandError(f"run #{run.pk} ended {run.status}")
