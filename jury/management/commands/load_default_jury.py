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
        members = ", ".join(
            f"{m.juror.name} ({m.juror.model_spec.model})" for m in jury.members.select_related("juror__model_spec")
        )
        self.stdout.write(f"jury {jury.name!r}: {members}; rule {jury.rule}")
        if opts["convert"]:
            from jury.backends.registry import prepare_backend  # a kind's hook may import torch: only when asked

            for m in jury.members.select_related("juror__model_spec"):
                prepared = prepare_backend(m.juror.model_spec.as_dict())
                if prepared is not None:
                    self.stdout.write(f"  converted {m.juror.model_spec.model} -> {prepared}")
