"""Reads for guards (querysets with their relations loaded)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from annotation.jobs import ACTIVE
from exports.guard.models import GuardEvaluation, GuardModel, GuardTraining


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


RECENT_EVALUATION_JOBS = 8  # the detail page lists every active evaluation job and this many in all


def guard_evaluation_jobs(*, guard_model: GuardModel) -> QuerySet[GuardEvaluation]:
    """Evaluation jobs of one guard, newest first."""
    return GuardEvaluation.objects.select_related("created_by").filter(guard_model=guard_model)


def guard_evaluation_jobs_recent(*, guard_model: GuardModel, limit: int = RECENT_EVALUATION_JOBS) -> list[GuardEvaluation]:
    """What the detail page lists: every pending or running evaluation job, then the newest
    finished ones up to ``limit`` rows in all, newest first."""
    jobs = guard_evaluation_jobs(guard_model=guard_model)
    active = list(jobs.filter(status__in=ACTIVE))
    rest = list(jobs.exclude(status__in=ACTIVE)[: max(0, limit - len(active))])
    return sorted(active + rest, key=lambda j: (j.created_at, j.pk), reverse=True)


def guard_evaluation_job_get(*, guard_model: GuardModel, pk: int) -> GuardEvaluation | None:
    return guard_evaluation_jobs(guard_model=guard_model).filter(pk=pk).first()


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
# --- evaluation reports, shaped for the pages (reads of stored JSON; nothing is recomputed) -----------
COMPARE_VERSIONS = 6  # the newest versions side by side on the comparison table
_SVG = {"size": 240, "pad": 34}  # the reliability diagram: a square plot area plus axis room


def guard_evaluation(guard: GuardModel, data_name: str) -> dict[str, Any] | None:
    """The stored report of one evaluation of ``guard`` (None when there is none)."""
    report = ((guard.metrics or {}).get("evaluations") or {}).get(data_name)
    return report if isinstance(report, dict) else None


def category_names(taxonomy_version) -> dict[str, str]:
    return dict(taxonomy_version.categories.values_list("code", "name"))


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _share(part: Any, whole: Any) -> float | None:
    p, w = _num(part), _num(whole)
    return None if p is None or not w else p / w


def evaluation_confusion(binary: dict[str, Any]) -> dict[str, Any] | None:
    """The 2x2 confusion matrix with each cell's share of its (true) row, for shading."""
    c = binary.get("confusion") or {}
    if not all(isinstance(c.get(k), int) for k in ("tp", "fp", "tn", "fn")):
        return None
    unsafe, safe = c["tp"] + c["fn"], c["fp"] + c["tn"]

    def cell(n: int, row: int, correct: bool) -> dict[str, Any]:
        share = n / row if row else 0.0
        return {"n": n, "share": share, "pct": round(100 * share), "alpha": round(0.08 + 0.55 * share, 3), "correct": correct}

    return {"unsafe_row": [cell(c["tp"], unsafe, True), cell(c["fn"], unsafe, False)],
            "safe_row": [cell(c["fp"], safe, False), cell(c["tn"], safe, True)],
            "unsafe": unsafe, "safe": safe, "total": unsafe + safe}


def evaluation_categories(categories: dict[str, Any], names: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Per-category rows, most support first: ``present`` (support or predictions in this data) and
    ``absent`` (codes the data never has and the guard never predicted: nothing to judge)."""
    rows: list[dict[str, Any]] = []
    for code, m in (categories or {}).items():
        if not isinstance(m, dict):
            continue
        f1 = _num(m.get("f1")) or 0.0
        rows.append({"code": code, "name": names.get(code, ""), "precision": _num(m.get("precision")),
                     "recall": _num(m.get("recall")), "f1": f1, "f1_pct": round(100 * max(0.0, min(1.0, f1)), 1),
                     "support": int(m.get("support") or 0), "predicted": int(m.get("predicted") or 0),
                     "threshold": _num(m.get("threshold"))})
    rows.sort(key=lambda r: (-r["support"], -r["predicted"], r["code"]))
    return {"present": [r for r in rows if r["support"] or r["predicted"]],
            "absent": [r for r in rows if not (r["support"] or r["predicted"])]}


def evaluation_reliability(bins: Any) -> dict[str, Any] | None:
    """The reliability diagram of stored bins (``[{lo, hi, count, mean_predicted, observed}]``, from
    exports.guard.ml.reliability) as SVG coordinates: one bar per bin at its observed unsafe rate,
    a dot at its mean predicted probability, the diagonal of perfect calibration."""
    if not isinstance(bins, list) or not bins:
        return None
    size, pad = _SVG["size"], _SVG["pad"]
    total = sum(int(b.get("count") or 0) for b in bins if isinstance(b, dict)) or 1
    out = []
    for b in bins:
        if not isinstance(b, dict) or None in (_num(b.get("lo")), _num(b.get("hi")), _num(b.get("observed"))):
            continue
        lo, hi, obs = float(b["lo"]), float(b["hi"]), float(b["observed"])
        pred = _num(b.get("mean_predicted"))
        height = obs * size
        out.append({
            "lo": lo, "hi": hi, "count": int(b.get("count") or 0), "share": int(b.get("count") or 0) / total,
            "observed": obs, "mean_predicted": pred,
            "gap": None if pred is None else obs - pred,
            "x": round(pad + lo * size + 1, 2), "w": round(max(1.0, (hi - lo) * size - 2), 2),
            "y": round(pad + size - height, 2), "h": round(height, 2),
            "px": None if pred is None else round(pad + pred * size, 2),
            "py": None if pred is None else round(pad + size - pred * size, 2),
            # the count strip under the x axis: opacity by the bin's share of the examples
            "strip_alpha": round(0.15 + 0.85 * int(b.get("count") or 0) / total, 3),
        })
    if not out:
        return None
    ticks = [{"v": t / 4, "label": f"{t / 4:g}", "x": pad + t / 4 * size, "y": pad + size - t / 4 * size} for t in range(5)]
    return {"bins": out, "size": size, "pad": pad, "width": size + 2 * pad, "height": size + 2 * pad + 18,
            "x0": pad, "x1": pad + size, "y0": pad + size, "y1": pad, "strip_y": pad + size + 22, "ticks": ticks}


def evaluation_view(guard: GuardModel, data_name: str) -> dict[str, Any] | None:
    """Everything the evaluation page shows, from the stored report alone (no model is loaded)."""
    report = guard_evaluation(guard, data_name)
    if report is None:
        return None
    binary = report.get("binary") or {}
    by_input = [{"name": name, "label": {"prompt": "Prompts alone", "response": "Prompt + response"}.get(name, name), **b}
                for name, b in (report.get("by_input") or {}).items() if isinstance(b, dict)]
    confusion = evaluation_confusion(binary) if binary else None
    flagged = _num(binary.get("flagged_safe_share"))
    data = report.get("data") or {}
    source = data.get("source") or {}
    return {
        "name": data_name,
        "report": report,
        "error": report.get("error"),
        "binary": binary,
        "confusion": confusion,
        "flagged_pct": None if flagged is None else round(100 * flagged, 1),
        "flagged_n": confusion["safe_row"][0]["n"] if confusion else None,
        "safe_n": confusion["safe"] if confusion else None,
        "by_input": by_input,
        "categories": evaluation_categories(report.get("categories") or {}, category_names(guard.taxonomy_version)),
        "categories_evaluated_on": report.get("categories_evaluated_on"),
        "categories_note": data.get("categories"),
        "reliability": evaluation_reliability(report.get("calibration")),
        "worst_errors": [e for e in report.get("worst_errors") or [] if isinstance(e, dict)],
        "source_label": _source_label(data_name, source),
        "evaluated_at": stored_time(report.get("evaluated_at")),
    }


def stored_time(value: Any) -> Any:
    """The stored ISO time as a datetime for the template's date filter (the text if unparseable)."""
    from django.utils.dateparse import parse_datetime

    try:
        return parse_datetime(value) or value if isinstance(value, str) else value
    except ValueError:
        return value


def _source_label(data_name: str, source: dict[str, Any]) -> str:
    kind = source.get("kind")
    if kind == "project":
        return f"the current consensus of project {source.get('slug')}"
    if kind == "file":
        return f"the labelled file {source.get('filename') or Path(str(source.get('path') or data_name)).name}"
    if kind == "export":
        return f"the export folder {Path(str(source.get('path') or '')).name}"
    return data_name


def guard_evaluations_compare(guard: GuardModel) -> dict[str, Any]:
    """Every stored evaluation of every version of ``guard.name`` (the newest COMPARE_VERSIONS
    versions, oldest first), one row per data name: F1 and AUROC per version, and each one's change
    against the nearest older version evaluated on the same data."""
    versions = list(guard_versions(name=guard.name).filter(taxonomy_version=guard.taxonomy_version)[:COMPARE_VERSIONS])
    versions.reverse()
    if guard.pk not in {v.pk for v in versions}:
        versions.append(guard)
    names: set[str] = set()
    for v in versions:
        names.update(((v.metrics or {}).get("evaluations") or {}).keys())
    rows = []
    for name in sorted(names):
        cells: list[dict[str, Any]] = []
        previous: dict[str, Any] | None = None
        for v in versions:
            r = guard_evaluation(v, name)
            b = (r or {}).get("binary") or {}
            cell: dict[str, Any] = {"guard": v, "has": r is not None, "error": (r or {}).get("error"),
                                    "f1": _num(b.get("f1")), "auroc": _num(b.get("auroc")), "n": b.get("n"),
                                    "f1_delta": None, "auroc_delta": None}
            if previous is not None:
                for key in ("f1", "auroc"):
                    if cell[key] is not None and previous[key] is not None:
                        cell[f"{key}_delta"] = cell[key] - previous[key]
            if cell["f1"] is not None or cell["auroc"] is not None:
                previous = cell
            cells.append(cell)
        rows.append({"name": name, "cells": cells, "mine": guard_evaluation(guard, name) is not None})
    return {"versions": versions, "rows": rows}
