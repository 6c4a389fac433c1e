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


def guard_for_folder(*, folder: str) -> GuardModel | None:
    """The registered guard whose folder is ``folder`` (a guard juror's spec names the folder)."""
    return guard_model_list().filter(path=str(folder)).order_by("-version").first()


def human_safety_consensus(*, project, item_ids: set[int] | None = None, needs_caution: str = "defensive"
                           ) -> dict[int, dict]:
    """The people's safety consensus per item, computed as exports compute it (``exports.evidence``:
    the current records, the safety majority with the needs-caution policy; source ``human-only``,
    so human and imported records count and adjudications override them; the jury's own records
    never count). ``item id -> {"prompt": label, "responses": {response id: label}, "positions":
    {response id: position}}``, a label being "safe", "unsafe" or None (no human label, or a tie).
    ``item_ids`` limits the answer (the project is still read in id order, chunk by chunk)."""
    from contextlib import closing

    from exports.evidence import decide, iter_chunks
    from exports.pipeline import taxonomy_context
    from exports.services import export_options_validate

    options = export_options_validate(project=project, raw={
        "format": "guard-aegis", "outputs": ["jsonl"], "source": "human-only", "needs_caution": needs_caution,
    })
    order = taxonomy_context(project).order
    out: dict[int, dict] = {}
    with closing(iter_chunks(project=project, options=options, prefetch=False)) as chunks:
        for chunk in chunks:
            for ev in chunk:
                if item_ids is not None and ev.item_id not in item_ids:
                    continue
                decide(ev, options, order)
                out[ev.item_id] = {
                    "prompt": ev.prompt_safety.label if ev.prompt_safety is not None else None,
                    "responses": {rid: c.label for rid, c in ev.response_safety.items()},
                    "positions": {rid: pos for rid, (pos, _text) in ev.responses.items()},
                }
    return out
