"""An audit line for every change to the jury's configuration (model specs, jurors, juries and their
members), whatever made it: the admin, the API, a command, the shell. A model spec decides which
endpoint receives item text and which key goes with it, so its changes must leave a trace; the
line names the environment variable of the key, never a value."""
from __future__ import annotations

import logging

from django.db.models.signals import post_delete, post_save

log = logging.getLogger("tribunal.audit")

AUDITED = ("ModelSpec", "Juror", "Jury", "JuryMember")


def _describe(instance) -> str:
    if type(instance).__name__ == "ModelSpec":
        return (f"name={instance.name!r} backend={instance.backend!r} model={instance.model!r} "
                f"endpoint={instance.endpoint!r} api_key_env={instance.api_key_env!r}")
    return ", ".join(f"{f.name}={getattr(instance, f.attname)!r}" for f in instance._meta.concrete_fields)


def _saved(sender, instance, created, **kwargs) -> None:
    log.info("jury configuration: %s %s %s: %s", sender.__name__, instance.pk, "created" if created else "changed",
             _describe(instance))


def _deleted(sender, instance, **kwargs) -> None:
    log.info("jury configuration: %s %s deleted: %s", sender.__name__, instance.pk, _describe(instance))


def connect() -> None:
    from jury import models

    for name in AUDITED:
        model = getattr(models, name)
        post_save.connect(_saved, sender=model, dispatch_uid=f"tribunal-audit-save-{name}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"tribunal-audit-delete-{name}")
