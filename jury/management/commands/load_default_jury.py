"""python manage.py load_default_jury [--convert]: the default jury of the two packaged models."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from jury import services


class Command(BaseCommand):
    help = "Create the default jury (SmolLM2-135M + Gemma 3 270M, packaged). Idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--convert", action="store_true",
                            help="also convert the packaged GGUF models into MODEL_CACHE_DIR now (else the worker does it on first use)")

    def handle(self, *args, **opts) -> None:
        jury = services.jury_ensure_default()
        members = ", ".join(f"{m.juror.name} ({m.juror.model})" for m in jury.members.select_related("juror"))
        self.stdout.write(f"jury {jury.name!r}: {members}; rule {jury.rule}")
        if opts["convert"]:
            from jury.backends.packaged import ensure_converted  # imports torch: only when asked

            for m in jury.members.select_related("juror"):
                if m.juror.backend == "packaged":
                    self.stdout.write(f"  converted {m.juror.model} -> {ensure_converted(m.juror.model)}")
