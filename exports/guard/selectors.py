"""Reads for guards (querysets with their relations loaded)."""
from __future__ import annotations

from django.db.models import QuerySet

from exports.guard.models import GuardModel, GuardTraining


def guard_model_list(*, taxonomy_version=None) -> QuerySet[GuardModel]:
    qs = GuardModel.objects.select_related("taxonomy_version__taxonomy", "created_by", "project", "training")
    return qs.filter(taxonomy_version=taxonomy_version) if taxonomy_version is not None else qs


def guard_model_get(*, pk: int) -> GuardModel | None:
    return guard_model_list().filter(pk=pk).first()


def guard_promoted(*, taxonomy_version) -> GuardModel | None:
    return guard_model_list(taxonomy_version=taxonomy_version).filter(status=GuardModel.Status.PROMOTED).first()


def guard_versions(*, name: str) -> QuerySet[GuardModel]:
    """Every version of one guard, newest first (for side-by-side metric deltas)."""
    return guard_model_list().filter(name=name).order_by("-version")


def guard_training_get(*, pk: int) -> GuardTraining | None:
    return GuardTraining.objects.select_related("guard_model__taxonomy_version__taxonomy").filter(pk=pk).first()
