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
MATRIX_BLOCKS = {"prompt_safety": "kappa", "response_safety": "kappa", "ranking": "kendall_tau_b", "choice": "kappa",
                 "edit_review": "kappa"}
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
        "unit": "shared unit", "desc": None,
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
    edit_review = m.get("edit_review") or {}
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
        "edit_review": {
            "n_items": edit_review.get("n_items", 0), "n_ratings": edit_review.get("n_ratings", 0),
            "verdicts": edit_review.get("verdicts") or {},
            "figures": _figure_bars(edit_review),
            "heatmap": heatmap(edit_review, "kappa", kinds),
        },
        "max_boot": MAX_BOOT,
        "progress": progress_chart(m.get("progress") or {}),
        "disputed": [{**d, "label_list": [(k, LABEL_NAMES.get(k, k), n) for k, n in (d.get("labels") or {}).items()]}
                     for d in m.get("disputed") or []],
        "discretion": discretion_context(m.get("discretion") or {}),
    }


# --- progress, discretion ---------------------------------------------------------------------------

CHART_W, CHART_H, CHART_PAD = 720, 180, 34


def progress_chart(progress: dict) -> dict[str, Any] | None:
    """Judgments per day (bars: people, imported, machines stacked) and the items that reached the
    overlap (a line, cumulative, on its own scale) as SVG coordinates."""
    days = progress.get("days") or []
    if not days:
        return None
    top = max(max(d["judgments"] for d in days), 1)
    done_top = max(progress.get("items") or 0, days[-1]["items_complete_total"], 1)
    inner_w, inner_h = CHART_W - 2 * CHART_PAD, CHART_H - 2 * CHART_PAD + 14
    step = inner_w / len(days)
    bar_w = max(min(step * 0.7, 28), 1.5)
    bars, points = [], []
    for k, d in enumerate(days):
        x = CHART_PAD + k * step + (step - bar_w) / 2
        y_base = CHART_PAD + inner_h
        parts = []
        for key in ("people", "imported", "machine"):
            h = inner_h * d[key] / top
            if h > 0:
                parts.append({"key": key, "y": round(y_base - h, 2), "h": round(h, 2)})
                y_base -= h
        cx = round(CHART_PAD + k * step + step / 2, 2)
        cy = round(CHART_PAD + inner_h - inner_h * d["items_complete_total"] / done_top, 2)
        bars.append({"x": round(x, 2), "w": round(bar_w, 2), "parts": parts, "day": d["day"], "d": d, "cx": cx, "cy": cy})
        points.append(f"{cx},{cy}")
    every = max(1, len(days) // 8)
    return {
        "width": CHART_W, "height": CHART_H, "bars": bars, "line": " ".join(points), "top": top,
        "done_top": done_top, "base": CHART_PAD + inner_h, "pad": CHART_PAD, "right": CHART_W - CHART_PAD,
        "ticks": [{"x": round(CHART_PAD + k * step + step / 2, 2), "day": d["day"]} for k, d in enumerate(days)
                  if k % every == 0 or k == len(days) - 1],
        "p": progress, "days": days,
    }


def _ps_heatmap(disc: dict, name: str) -> dict[str, Any] | None:
    row = (disc.get("annotator") or {}).get(name) or {}
    if not row.get("ps"):
        return None
    h = heatmap({"matrix": {"raters": disc["principles"], "ps": row["ps"], "n_shared": row["n"]}}, "ps", {})
    if h is not None:
        h.update(name=f"PS of {name}", unit="conflict row",
                 desc=f"Cell (i, j): the share of the rows where principles i and j conflict on which {name} sided "
                      "with i (PS); hover for n_ij, the number of such rows. Grey: no such row.")
    return h


def discretion_context(disc: dict) -> dict[str, Any] | None:
    """The discretion section: DA and DD per annotator, w* ranks side by side, PS heatmaps, DD heatmap."""
    if not disc.get("n_rows"):
        return {"empty": True, "juries": disc.get("juries") or []} if disc else None
    names = disc.get("annotators") or []
    kinds = disc.get("kinds") or {}
    per = disc.get("annotator") or {}
    dd_ref = disc.get("dd_reference") or {}
    table = []
    for name in names:
        row = per.get(name) or {}
        boot = row.get("da_boot") or [None, None]
        table.append({"name": name, "kind": kinds.get(name, ""), "n_rows": row.get("n_rows"), "da": row.get("da"),
                      "da_mean": boot[0], "da_sd": boot[1], "dd": dd_ref.get(name) or {}})
    principles = disc.get("principles") or []
    ranks = [{"principle": p, "cells": [{"rank": (per.get(n) or {}).get("rank", [None] * len(principles))[i],
                                          "w": (per.get(n) or {}).get("w", [None] * len(principles))[i]}
                                         for n in names]} for i, p in enumerate(principles)]
    dd = None
    if disc.get("dd"):
        dd = heatmap({"matrix": {"raters": names, "dd": disc["dd"], "n_shared": [[0] * len(names) for _ in names]}},
                     "dd", kinds)
        if dd is not None:
            dd.update(name="DD", unit="",
                      desc="Cell: the discretion discrepancy DD = (1 - tau_b of the two w* rankings) / 2, 0 for the "
                           "same priorities, 1 for reversed ones.")
            for r in dd["rows"]:
                for c in r["cells"]:
                    c["fill"] = _cell_fill(None if c["v"] is None else 1 - 2 * c["v"])
                    c["dark"] = c["v"] is not None and abs(1 - 2 * c["v"]) > 0.55
    maps = []
    for k, n in enumerate(names):
        h = _ps_heatmap(disc, n)
        if h is not None:
            h.update(who=n, hid=f"ps-{k}", kind=kinds.get(n, ""))
            maps.append(h)
    return {"empty": False, "d": disc, "table": table, "names": [{"name": n, "kind": kinds.get(n, "")} for n in names],
            "ranks": ranks, "dd": dd, "ps_maps": maps, "classes": disc.get("classes") or {},
            "capture": disc.get("conflict_capture") or []}


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
        for section in ("prompt_safety", "response_safety", "ranking", "choice", "edit_review"):
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
    if name == "progress":
        rows = [["day", "judgments", "people", "imported", "machine", "items_complete", "items_complete_total"]]
        for d in (m.get("progress") or {}).get("days") or []:
            rows.append([d.get(k) for k in rows[0]])
        return rows
    if name == "disputed":
        rows = [["item", "disagreement", "units", "n_labels", *SAFETY]]
        for d in m.get("disputed") or []:
            rows.append([d["item"], d["disagreement"], d["units"], d["n_labels"],
                         *((d.get("labels") or {}).get(k, 0) for k in SAFETY)])
        return rows
    disc = m.get("discretion") or {}
    per = disc.get("annotator") or {}
    names = disc.get("annotators") or []
    principles = disc.get("principles") or []
    if name == "discretion-annotators":
        rows = [["annotator", "kind", "n_rows", "da", "da_boot_mean", "da_boot_sd", "dd_reference",
                 "dd_reference_mean", "dd_reference_sd"]]
        for a in names:
            boot = (per.get(a) or {}).get("da_boot") or [None, None]
            ref = (disc.get("dd_reference") or {}).get(a) or {}
            rows.append([a, (disc.get("kinds") or {}).get(a), (per.get(a) or {}).get("n_rows"),
                         (per.get(a) or {}).get("da"), boot[0], boot[1], ref.get("value"), ref.get("mean"), ref.get("sd")])
        return rows
    if name == "discretion-ranks":
        rows = [["annotator", "principle", "w", "rank"]]
        for a in names:
            for i, p in enumerate(principles):
                rows.append([a, p, (per[a].get("w") or [None] * len(principles))[i],
                             (per[a].get("rank") or [None] * len(principles))[i]])
        return rows
    if name == "discretion-ps":
        rows = [["annotator", "principle_i", "principle_j", "ps", "n_ij"]]
        for a in names:
            ps, n = per[a].get("ps") or [], per[a].get("n") or []
            for i, pi in enumerate(principles):
                for j, pj in enumerate(principles):
                    if i != j and ps:
                        rows.append([a, pi, pj, ps[i][j], n[i][j]])
        return rows
    if name == "discretion-dd":
        rows = [["annotator_a", "annotator_b", "dd", "dd_boot_mean", "dd_boot_sd"]]
        dd, mean, sd = disc.get("dd") or [], disc.get("dd_boot_mean"), disc.get("dd_boot_sd")
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                rows.append([a, b, dd[i][j] if dd else None, mean[i][j] if mean else None, sd[i][j] if sd else None])
        return rows
    if name == "conflict-capture":
        rows = [["annotator", "n_rows", "n_conflict_rows", "marked_share", "recall", "precision"]]
        for c in disc.get("conflict_capture") or []:
            rows.append([c.get(k) for k in rows[0]])
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
             "progress.csv", "disputed.csv", "discretion-annotators.csv", "discretion-ranks.csv", "discretion-ps.csv",
             "discretion-dd.csv", "conflict-capture.csv", "metrics.json")


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
