"""The researcher's analytics page: ``/projects/<slug>/metrics/``.

Everything on it comes from :func:`annotation.metrics.services.project_metrics` (cached under the
project's newest annotation id): this module only turns that dict into what the template draws
(interval bars, the rater x rater heatmaps, stacked distribution bars; all server-rendered, no
JavaScript) and into CSV / JSON downloads (``?download=annotators.csv``; ``metrics.json`` is the
whole dict). Researchers of the project and admins only; annotators and non-members get 404.
"""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.dateparse import parse_datetime

from annotation import roles
from annotation.metrics.services import DEFAULT_BOOT, MAX_BOOT, project_metrics_shown

SAFETY = ("safe", "needs_caution", "unsafe")
LABEL_NAMES = {"safe": "safe", "needs_caution": "needs caution", "unsafe": "unsafe"}
HEADLINE = (("alpha_nominal", "Krippendorff's α (nominal)"), ("fleiss_kappa", "Fleiss' κ"),
            ("percent_agreement", "Percent agreement"))
FIGURE_NAMES = {
    "alpha_nominal": "Krippendorff's α (nominal)",
    "alpha_ordinal": "Krippendorff's α (ordinal)",
    "alpha": "Krippendorff's α",
    "fleiss_kappa": "Fleiss' κ",
    "percent_agreement": "Percent agreement",
    "unanimous_share": "Unanimous share",
    "unanimous": "Unanimous share",
    "present_share": "Share marked present",
    "kendall_w": "Kendall's W",
    "kendall_tau_b": "Kendall's τ-b",
    "kappa": "Cohen's κ",
}
LABEL_BLOCKS = (("prompt_safety", "Prompt safety labels"), ("response_safety", "Response safety labels"))
MATRIX_BLOCKS = {"prompt_safety": "kappa", "response_safety": "kappa", "ranking": "kendall_tau_b", "choice": "kappa"}
ANNOTATOR_COLUMNS = (
    "rater", "kind", "n_items", "loo_agreement", "loo_items", "gold_accuracy", "gold_items", "items_per_hour",
    "median_seconds_per_item", "timed_items", "submitted", "skipped", "flagged", "skip_rate", "flag_rate", "distance",
)
CELL = 38  # heatmap cell, px
LABEL_W = 150  # heatmap row labels, px
NAME_CHARS = 22  # names longer than this are cut in the heatmaps (the list under each one is whole)
# Figures on [0, 1]; the others (alpha, kappa, tau) can go below 0, so their bars are on [-1, 1] when one does.
NON_NEGATIVE = ("percent_agreement", "unanimous", "unanimous_share", "present_share", "kendall_w")


def _pct(x: float, lo: float, hi: float) -> float:
    return round(100 * (min(max(x, lo), hi) - lo) / (hi - lo), 2)


def _figure_bars(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The block's agreement figures as named interval bars (on [-1, 1] unless the figure cannot be
    negative)."""
    return [{"name": FIGURE_NAMES.get(k, k), "key": k, "bar": interval_bar(est, lo=0.0 if k in NON_NEGATIVE else -1.0)}
            for k, est in (block.get("agreement") or {}).items()]


def interval_bar(est: dict | None, *, lo: float = 0.0, hi: float = 1.0) -> dict[str, Any] | None:
    """Positions (in % of the bar) of an estimate's value and its 95% interval on [lo, hi]."""
    if not est or est.get("value") is None:
        return None
    value, low, high = est["value"], est.get("low"), est.get("high")
    bar: dict[str, Any] = {"value": value, "low": low, "high": high, "n_items": est.get("n_items"),
                           "x": _pct(value, lo, hi), "zero": _pct(0.0, lo, hi) if lo < 0 else None}
    if low is not None and high is not None:
        bar["left"] = _pct(low, lo, hi)
        bar["width"] = max(round(_pct(high, lo, hi) - bar["left"], 2), 0.5)
    return bar


def _domain(estimates: list[dict | None]) -> float:
    """The bars' lower end: 0, or -1 when a value or an interval of the section goes below 0."""
    for est in estimates:
        if est and any(est.get(k) is not None and est[k] < 0 for k in ("value", "low")):
            return -1.0
    return 0.0


def _cell_fill(v: float | None) -> str:
    if v is None:
        return "#f3f4f6"
    a = round(min(abs(v), 1.0) * 0.85 + 0.08, 3)
    return f"rgba(36, 81, 183, {a})" if v >= 0 else f"rgba(180, 35, 24, {a})"


def heatmap(block: dict, value_name: str, kinds: dict[str, str]) -> dict[str, Any] | None:
    """An SVG heatmap of one pairwise matrix of the dict: cells with their value, shared count and a
    ``<title>`` for the hover."""
    matrix = block.get("matrix") or {}
    raters = matrix.get("raters") or []
    values = matrix.get(value_name)
    if not raters or values is None:
        return None
    n_shared = matrix.get("n_shared") or [[0] * len(raters) for _ in raters]
    extra = {k: v for k, v in matrix.items() if k not in ("raters", "n_shared", value_name)}
    # room for the column names, drawn at -55 degrees (about 5 px of height per character)
    head = 16 + round(5.2 * min(max(len(r) for r in raters), NAME_CHARS))
    rows = []
    for i, a in enumerate(raters):
        cells = []
        for j, b in enumerate(raters):
            v = values[i][j]
            n = n_shared[i][j]
            more = {FIGURE_NAMES.get(k, k.replace("_", " ")): vals[i][j] for k, vals in extra.items()}
            cells.append({
                "x": LABEL_W + j * CELL, "y": head + i * CELL, "v": v, "n": n, "fill": _cell_fill(v),
                "text": "—" if v is None else f"{v:.2f}", "dark": v is not None and abs(v) > 0.55,
                "a": a, "b": b, "more": [(k, "—" if x is None else f"{x:.2f}") for k, x in more.items()],
            })
        rows.append({"rater": a, "kind": kinds.get(a, ""), "y": head + i * CELL + CELL / 2, "cells": cells})
    size = len(raters)
    return {
        "name": FIGURE_NAMES.get(value_name, value_name), "rows": rows, "cell": CELL,
        "cols": [{"rater": r, "x": LABEL_W + j * CELL + CELL / 2, "y": head - 6} for j, r in enumerate(raters)],
        "width": LABEL_W + size * CELL + 4, "height": head + size * CELL + 4, "label_x": LABEL_W - 6,
    }


def distribution_bar(dist: dict | None) -> list[dict[str, Any]]:
    segments = []
    for label in SAFETY:
        share = (dist or {}).get(label)
        if share:
            segments.append({"label": label, "name": LABEL_NAMES[label], "share": share,
                             "width": round(100 * share, 2)})
    return segments


def _label_section(key: str, title: str, block: dict, kinds: dict[str, str]) -> dict[str, Any]:
    agreement = block.get("agreement") or {}
    categories = block.get("categories") or {}
    lo = _domain([agreement.get(k) for k, _ in HEADLINE]
                 + [figs.get("fleiss_kappa") for figs in categories.values()])
    headline = [{"name": name, "key": k, "bar": interval_bar(agreement.get(k), lo=0 if k in NON_NEGATIVE else lo)}
                for k, name in HEADLINE if k in agreement]
    others = [{"name": FIGURE_NAMES.get(k, k), "key": k, "est": est} for k, est in agreement.items()
              if k not in dict(HEADLINE)]
    cats = [{"code": code, "kappa": interval_bar(figs.get("fleiss_kappa"), lo=lo),
             "alpha": (figs.get("alpha_nominal") or {}).get("value"),
             "present": (figs.get("present_share") or {}).get("value"),
             "n_items": (figs.get("fleiss_kappa") or figs.get("present_share") or {}).get("n_items")}
            for code, figs in categories.items()]
    return {"key": key, "title": title, "n_units": block.get("n_units", 0), "n_ratings": block.get("n_ratings", 0),
            "headline": headline, "others": others, "categories": cats, "lo": lo,
            "heatmap": heatmap(block, "kappa", kinds)}


def page_context(m: dict) -> dict[str, Any]:
    """What the template draws, from the metrics dict."""
    kinds = {r["id"]: r["kind"] for r in m.get("raters", [])}
    project_dist = m.get("project_distribution") or {}
    annotators = []
    for row in m.get("annotators", []):
        annotators.append({**row, "bar": distribution_bar(row.get("distribution"))})
    ranking = m.get("ranking") or {}
    choice = m.get("choice") or {}
    computed = m.get("computed_at")
    finished = (m.get("snapshot") or {}).get("finished_at")
    return {
        "m": m,
        "computed_at": parse_datetime(computed) if computed else None,
        "snapshot_at": parse_datetime(finished) if finished else None,
        "label_sections": [_label_section(k, t, m.get(k) or {}, kinds) for k, t in LABEL_BLOCKS],
        "annotators": annotators,
        "project_bar": distribution_bar(project_dist),
        "legend": [{"label": k, "name": v} for k, v in LABEL_NAMES.items()],
        "ranking": {
            "n_items": ranking.get("n_items", 0), "n_ratings": ranking.get("n_ratings", 0),
            "figures": _figure_bars(ranking),
            "heatmap": heatmap(ranking, "kendall_tau_b", kinds),
        },
        "choice": {
            "n_pairs": choice.get("n_pairs", 0), "n_ratings": choice.get("n_ratings", 0),
            "figures": _figure_bars(choice),
            "heatmap": heatmap(choice, "kappa", kinds),
        },
        "max_boot": MAX_BOOT,
    }


# --- downloads ------------------------------------------------------------------------------------


def _cell(v: Any) -> Any:
    """A CSV cell: numbers as they are (empty for null); text that a spreadsheet would run as a
    formula is prefixed with a quote."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def _estimate_rows(section: str, figures: dict, extra: tuple = ()) -> list[list[Any]]:
    return [[section, *extra, name, est.get("value"), est.get("low"), est.get("high"), est.get("n_items")]
            for name, est in figures.items()]


def table_rows(m: dict, name: str) -> list[list[Any]] | None:
    """The rows (header first) of one downloadable table of the dict; None for an unknown name."""
    if name == "agreement":
        rows: list[list[Any]] = [["section", "figure", "value", "low", "high", "n_items"]]
        for section in ("prompt_safety", "response_safety", "ranking", "choice"):
            rows += _estimate_rows(section, (m.get(section) or {}).get("agreement") or {})
        return rows
    if name == "categories":
        rows = [["section", "category", "figure", "value", "low", "high", "n_items"]]
        for section, _ in LABEL_BLOCKS:
            for code, figs in ((m.get(section) or {}).get("categories") or {}).items():
                rows += _estimate_rows(section, figs, (code,))
        return rows
    if name == "annotators":
        header = [*ANNOTATOR_COLUMNS, *(f"share_{label}" for label in SAFETY)]
        rows = [header]
        for row in m.get("annotators", []):
            dist = row.get("distribution") or {}
            rows.append([row.get(c) for c in ANNOTATOR_COLUMNS] + [dist.get(label) for label in SAFETY])
        return rows
    if name.startswith("matrix-") and name[7:] in MATRIX_BLOCKS:
        matrix = (m.get(name[7:]) or {}).get("matrix") or {}
        raters = matrix.get("raters") or []
        names = [k for k in matrix if k not in ("raters", "n_shared")]
        rows = [["rater_a", "rater_b", *names, "n_shared"]]
        for i, a in enumerate(raters):
            for j, b in enumerate(raters):
                rows.append([a, b, *(matrix[k][i][j] for k in names), matrix["n_shared"][i][j]])
        return rows
    return None


DOWNLOADS = ("agreement.csv", "categories.csv", "annotators.csv", *(f"matrix-{k}.csv" for k in MATRIX_BLOCKS),
             "metrics.json")


def _download(m: dict, slug: str, name: str) -> HttpResponse:
    filename = f"{slug}-{name}"
    if name == "metrics.json":
        response = HttpResponse(json.dumps(m, indent=2), content_type="application/json")
    else:
        rows = table_rows(m, name.removesuffix(".csv")) if name.endswith(".csv") else None
        if rows is None:
            raise Http404("No such download.")
        out = io.StringIO()
        writer = csv.writer(out)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def project_metrics_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    raw = request.GET.get("bootstrap", "")
    try:
        n_boot = DEFAULT_BOOT if raw == "" else int(raw)
    except ValueError:
        n_boot = -1
    if not 0 <= n_boot <= MAX_BOOT:
        return HttpResponseBadRequest(f"bootstrap must be a whole number between 0 and {MAX_BOOT}.".encode())
    download = request.GET.get("download")
    if download is not None and download not in DOWNLOADS:
        raise Http404("No such download.")
    m = project_metrics_shown(project, n_boot=n_boot)
    if download:
        return _download(m, project.slug, download)
    context = page_context(m)
    context.update(project=project, n_boot=n_boot, bootstrap_param=raw,
                   downloads={name.split(".")[0].replace("-", "_"): name for name in DOWNLOADS})
    return render(request, "annotation/metrics.html", context)
