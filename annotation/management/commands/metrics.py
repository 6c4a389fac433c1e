"""``python manage.py metrics --project SLUG [--json] [--bootstrap N]``: a project's agreement figures."""
from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotation.metrics.services import DEFAULT_BOOT, MAX_BOOT, project_metrics
from annotation.models import Project


def _f(x: Any, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _est(e: dict | None) -> str:
    if not e:
        return "-"
    if e["low"] is None:
        return f"{_f(e['value'])}"
    return f"{_f(e['value'])} [{_f(e['low'])}, {_f(e['high'])}]"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max([len(h)] + [len(r[k]) for r in rows]) for k, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return out


def _matrix_lines(matrix: dict, name: str) -> list[str]:
    raters = matrix["raters"]
    if not raters:
        return ["  (no ratings)"]
    rows = []
    for a, ra in enumerate(raters):
        row = [ra]
        for b in range(len(raters)):
            value = matrix[name][a][b]
            row.append(f"{_f(value, 2)} ({matrix['n_shared'][a][b]})" if matrix["n_shared"][a][b] else "-")
        rows.append(row)
    return ["  " + line for line in _table([name] + raters, rows)]


def render_text(m: dict) -> str:
    lines = [f"Project {m['project']} ({m['mode']}), bootstrap {m['n_boot']} resamples, computed {m['computed_at']}"]
    lines.append("Raters: " + ", ".join(f"{r['id']} ({r['kind']})" for r in m["raters"]))
    for key, title in (("prompt_safety", "Prompt safety labels"), ("response_safety", "Response safety labels")):
        block = m[key]
        lines += ["", f"{title}: {block['n_units']} units, {block['n_ratings']} ratings"]
        if block["agreement"]:
            lines += ["  " + f"{name}: {_est(e)}  (n={e['n_items']})" for name, e in block["agreement"].items()]
            cats = [[code, _est(f.get("alpha_nominal")), _est(f.get("fleiss_kappa")), _f(f["present_share"]["value"])]
                    for code, f in block["categories"].items() if f.get("present_share", {}).get("value")]
            if cats:
                lines += ["  " + line for line in _table(["category", "alpha", "fleiss kappa", "present"], cats)]
            lines += ["  Cohen's kappa (shared items):"] + _matrix_lines(block["matrix"], "kappa")
    rk = m["ranking"]
    lines += ["", f"Rankings: {rk['n_items']} items, {rk['n_ratings']} rankings"]
    if rk["agreement"]:
        lines += ["  " + f"{name}: {_est(e)}  (n={e['n_items']})" for name, e in rk["agreement"].items()]
        lines += ["  Kendall's tau-b (shared items):"] + _matrix_lines(rk["matrix"], "kendall_tau_b")
    ch = m["choice"]
    lines += ["", f"Pairwise choices: {ch['n_pairs']} pairs, {ch['n_ratings']} choices"]
    if ch["agreement"]:
        lines += ["  " + f"{name}: {_est(e)}  (n={e['n_items']})" for name, e in ch["agreement"].items()]
        lines += ["  Cohen's kappa (shared pairs):"] + _matrix_lines(ch["matrix"], "kappa")
    lines += ["", "Annotators (safety labels of prompts and responses):"]
    dist = m["project_distribution"]
    lines.append("  project: " + ", ".join(f"{k} {_f(v, 2)}" for k, v in dist.items()))
    rows = [
        [a["rater"], a["kind"], str(a["n_items"]), _f(a["loo_agreement"]), _f(a["gold_accuracy"]),
         _f(a["items_per_hour"], 1), _f(a["median_seconds_per_item"], 1), _f(a["skip_rate"], 2),
         _f(a["flag_rate"], 2),
         " ".join(f"{_f(v, 2)}" for v in a["distribution"].values()), _f(a["distance"], 2)]
        for a in m["annotators"]
    ]
    lines += ["  " + line for line in _table(
        ["rater", "kind", "labels", "LOO agr.", "gold acc.", "items/h", "median s", "skip", "flag",
         "safe/caution/unsafe", "dist."], rows)]
    lines += _discretion_lines(m.get("discretion") or {})
    lines += [""] + m["notes"]
    return "\n".join(lines)


def _weight(w) -> str:
    return w if isinstance(w, str) else f"{w:.2f}"


def _discretion_lines(d: dict) -> list[str]:
    if not d.get("n_rows"):
        return ["", "Discretion: no principle-specific preferences (run the jury's principles task)."]
    classes = ", ".join(f"{k} {v}" for k, v in d["classes"].items())
    lines = ["", f"Discretion ({d['jury']}'s p_i): {d['n_rows']} pairs; {classes}; reference {d['reference']}"]
    rows = []
    for name in d["annotators"]:
        a = d["annotator"][name]
        da_mean, da_sd = a["da_boot"]
        dd = d["dd_reference"].get(name, {})
        top = sorted(range(len(d["principles"])), key=lambda k: a["rank"][k])[:3]
        rows.append([name, d["kinds"].get(name, ""), str(a["n_rows"]), _f(a["da"]),
                     f"{_f(da_mean)} ± {_f(da_sd)}", _f(dd.get("value")),
                     f"{_f(dd.get('mean'))} ± {_f(dd.get('sd'))}",
                     ", ".join(f"{d['principles'][k]} ({_weight(a['w'][k])})" for k in top)])
    lines += ["  " + line for line in _table(
        ["rater", "kind", "pairs", "DA", "DA boot", "DD vs ref.", "DD boot", "top principles (w*)"], rows)]
    if d["conflict_capture"]:
        lines.append("  Marked \"principles conflicted\" against the jury's Conflict rows:")
        lines += ["  " + line for line in _table(
            ["annotator", "pairs", "conflict rows", "marked", "recall", "precision"],
            [[c["annotator"], str(c["n_rows"]), str(c["n_conflict_rows"]), _f(c["marked_share"]), _f(c["recall"]),
              _f(c["precision"])] for c in d["conflict_capture"]])]
    return lines


class Command(BaseCommand):
    help = "A project's agreement figures: readable tables, or JSON with --json."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
        parser.add_argument("--bootstrap", type=int, default=DEFAULT_BOOT,
                            help=f"Bootstrap resamples for the intervals (0 to {MAX_BOOT}; default {DEFAULT_BOOT}).")

    def handle(self, *args, **options) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug {options['project']!r}.")
        n_boot = options["bootstrap"]
        if not 0 <= n_boot <= MAX_BOOT:
            raise CommandError(f"--bootstrap must be between 0 and {MAX_BOOT}.")
        metrics = project_metrics(project, n_boot=n_boot)
        if options["json"]:
            self.stdout.write(json.dumps(metrics, indent=1, allow_nan=False))
        else:
            self.stdout.write(render_text(metrics))
