"""Configuration of the panel: model specs, jurors, juries, the default jury of the packaged models."""
from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from jury.backends.registry import PACKAGED_MODELS, backend_kind, prepare_backend
from jury.models import MODEL_SPEC_FIELDS, Juror, Jury, JuryMember, ModelSpec

log = logging.getLogger(__name__)

DEFAULT_JURY = "default"


@transaction.atomic
def model_spec_create(*, name: str, backend: str, model: str, **options: Any) -> ModelSpec:
    """Create a model spec after validating it against its backend kind (an unknown kind, an
    unknown packaged model, a missing endpoint, the fake kind outside tests/DEBUG are clear errors)."""
    spec = ModelSpec(name=name, backend=backend, model=model, **options)
    spec.full_clean()
    spec.save()
    return spec


def _free_spec_name(name: str) -> str:
    candidate, n = name, 1
    while ModelSpec.objects.filter(name=candidate).exists():
        n += 1
        candidate = f"{name}-{n}"[:100]
    return candidate


@transaction.atomic
def juror_create(
    *, name: str, model_spec: ModelSpec | None = None, prompt_version: str = "v1", description: str = "",
    enabled: bool = True, **spec_options: Any,
) -> Juror:
    """Create a juror after validating it (unknown prompt version, and the spec's own errors).

    Either pass an existing ``model_spec``, or the spec's fields (``backend``, ``model``, ``device``,
    ``batch_size``, ...) and a spec named after the juror is created with them.
    """
    unknown = set(spec_options) - set(MODEL_SPEC_FIELDS)
    if unknown:
        raise TypeError(f"juror_create() got unexpected fields {sorted(unknown)}")
    if model_spec is None:
        model_spec = model_spec_create(name=_free_spec_name(name), description=description, **spec_options)
    elif spec_options:
        raise TypeError("Pass either model_spec or the spec's fields, not both.")
    juror = Juror(name=name, model_spec=model_spec, prompt_version=prompt_version, description=description,
                  enabled=enabled)
    juror.full_clean()
    juror.save()
    return juror


@transaction.atomic
def jury_create(*, name: str, jurors: list[tuple[Juror, float]], rule: str = Jury.Rule.MEAN, **options: Any) -> Jury:
    if not jurors:
        raise ValueError("A jury needs at least one juror.")
    jury = Jury(name=name, rule=rule, **options)
    jury.full_clean()
    jury.save()
    for juror, weight in jurors:
        JuryMember.objects.create(jury=jury, juror=juror, weight=weight)
    return jury


@transaction.atomic
def jury_ensure_default() -> Jury:
    """The default jury of the two packaged models (CPU-friendly). Idempotent; never overwrites
    an admin's edits to existing specs, jurors or the jury."""
    members = []
    for key, name in (("smollm2-135m-instruct", "smollm2-135m"), ("gemma3-270m", "gemma3-270m")):
        juror = Juror.objects.filter(name=name).first()
        if juror is None:
            spec, _ = ModelSpec.objects.get_or_create(
                name=name,
                defaults={"backend": "packaged", "model": key, "description": PACKAGED_MODELS[key].description,
                          "batch_size": 8, "max_length": 768},
            )
            juror = Juror.objects.create(name=name, model_spec=spec, prompt_version="v2",
                                         description=PACKAGED_MODELS[key].description)
        members.append(juror)
    jury, created = Jury.objects.get_or_create(
        name=DEFAULT_JURY,
        defaults={"rule": Jury.Rule.MEAN, "description": "The two packaged models (SmolLM2-135M, Gemma 3 270M). Weak judges: "
                  "see bench/RESULTS.md. Add stronger jurors for real use."},
    )
    if created:
        for juror in members:
            JuryMember.objects.get_or_create(jury=jury, juror=juror, defaults={"weight": 1.0})
    return jury


def packaged_models_prepare() -> list[str]:
    """Prepare (convert once into MODEL_CACHE_DIR) every model that a juror's spec names with a kind that
    has a ``prepare`` hook, packaged GGUFs first of all. Idempotent; returns what it prepared. Worker-only:
    a hook may import torch."""
    prepared: list[str] = []
    seen: set[tuple[str, str]] = set()
    for spec in ModelSpec.objects.filter(jurors__isnull=False).distinct().order_by("pk"):
        data = spec.as_dict()
        key = (data["backend"], data.get("model") or "")
        if key in seen:
            continue
        seen.add(key)
        try:
            if backend_kind(data["backend"]).prepare is None:
                continue
        except Exception:  # an unknown kind: the run that uses it will say so
            continue
        try:
            prepare_backend(data)
            prepared.append(key[1])
        except Exception:  # never break a worker start: the first run reports the error on its page
            log.exception("preparing model %s failed", key[1])
    return prepared
