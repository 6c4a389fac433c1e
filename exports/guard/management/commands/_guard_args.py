"""Argument helpers shared by train_guard and eval_guard."""
from __future__ import annotations

from django.core.management.base import CommandError

from annotation.models import TaxonomyVersion


def taxonomy_version_from(text: str) -> TaxonomyVersion:
    """``slug`` (its newest published version) or ``slug:version``."""
    slug, _, number = text.partition(":")
    qs = TaxonomyVersion.objects.select_related("taxonomy").filter(taxonomy__slug=slug)
    if number:
        version = qs.filter(version=int(number)).first() if number.isdigit() else None
    else:
        version = qs.filter(status=TaxonomyVersion.Status.PUBLISHED).order_by("-version").first()
    if version is None:
        known = sorted(set(TaxonomyVersion.objects.values_list("taxonomy__slug", flat=True)))
        raise CommandError(f"No taxonomy version {text!r}; taxonomies: {', '.join(known) or 'none (run load_presets)'}.")
    return version
