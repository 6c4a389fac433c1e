"""Speed of the agreement metrics (annotation.metrics) on a project-sized table, bootstrap included.

    .venv/bin/python bench/metrics.py                        # 100k annotations, 50 raters, n_boot 1000
    .venv/bin/python bench/metrics.py --annotations 20000 --boot 200

Synthetic data, seeded: ``annotations / 5`` items, each judged by 5 of the 50 raters (as the
workbench's overlap of 5 would assign them). Every annotation carries what a ranking + safety
project stores: a prompt label (safe / needs caution / unsafe, agreeing with the item's hidden
truth 70% of the time), categories when unsafe (1-2 of 12 codes) and a ranking of the item's 4
responses (tie groups); a pairwise-choice table of the same size is timed on its own. Raters 0-4
are "machine" raters (named juror / guard / jury), the rest people: the code does not care.

Baselines, measured in the same run on the same data:
  - Cohen's kappa for every pair: scikit-learn's ``cohen_kappa_score`` called per pair on the shared
    items (the direct way), against ``agreement_matrix`` (all pairs from confusion counts);
  - the bootstrap of alpha: ``krippendorff.alpha`` recomputed on each resampled reliability matrix
    (timed on 20 resamples and scaled to n_boot), against ``label_agreement`` (alpha, Fleiss,
    percent agreement and unanimity together, n_boot resamples);
  - Kendall's tau-b: ``scipy.stats.kendalltau`` per (pair of raters, item) (timed on 2,000 and
    scaled), against ``ranking_agreement`` / ``kendall_tau_matrix``.
Also the discretion report (``annotation.metrics.discretion.discretion``) on an HH-RLHF-sized
case: 300 rows, 21 principles, 6 annotators, n_boot resamples, each resample fitting w* by Adam.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from annotation.metrics import agreement as ag  # noqa: E402
from annotation.metrics import discretion as disc  # noqa: E402

CODES = [f"S{k}" for k in range(1, 13)]


def make_rows(n_annotations: int, n_raters: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    names = ["juror:smollm2", "juror:gemma3", "guard:1", "guard:2", "jury"] + [f"u:{k}" for k in range(5, n_raters)]
    items = n_annotations // 5
    labels, categories, rankings, choices = [], [], [], []
    for item in range(items):
        truth = int(rng.choice(3, p=[0.6, 0.15, 0.25]))
        truth_cats = list(rng.choice(CODES, size=2, replace=False))
        order = list(rng.permutation(4))
        for r in rng.choice(n_raters, size=5, replace=False):
            rater = names[r]
            label = truth if rng.random() < 0.7 else int(rng.integers(0, 3))
            labels.append((rater, item, ag.SAFETY_LABELS[label]))
            cats = truth_cats[: 1 + int(rng.random() < 0.3)] if label == 2 else []
            if cats and rng.random() < 0.2:
                cats = [str(rng.choice(CODES))]
            categories.append((rater, item, cats))
            mine = list(order) if rng.random() < 0.6 else list(rng.permutation(4))
            groups: list[list[int]] = []
            for k in mine:
                if groups and rng.random() < 0.15:
                    groups[-1].append(item * 4 + int(k))
                else:
                    groups.append([item * 4 + int(k)])
            rankings.append((rater, item, groups))
            choices.append((rater, item, "a" if (mine.index(order[0]) < mine.index(order[1])) else "b"))
    return labels, categories, rankings, choices


CPU: list[float] = [0.0]


def timed(fn, *args, **kwargs):
    """Wall seconds of the call; its process CPU seconds go to ``CPU[0]`` (the machine is shared,
    so CPU time shows what the code costs when wall time includes waiting for a core)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    CPU[0] = time.process_time() - cpu
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", type=int, default=100_000)
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--discretion-boot", type=int, default=1000)
    args = parser.parse_args()
    from scipy.stats import kendalltau
    from sklearn.metrics import cohen_kappa_score

    labels, categories, rankings, choices = make_rows(args.annotations, args.raters)
    print(f"{len(labels):,} annotations, {args.raters} raters, {args.annotations // 5:,} items, n_boot {args.boot}")
    lines: list[tuple[str, float]] = []

    cpu_total = [0.0]

    def row(what: str, seconds: float) -> None:
        lines.append((what, seconds))
        cpu = CPU[0]
        cpu_total[0] += cpu
        print(f"  {what:<62} {seconds:8.2f} s  (CPU {cpu:.2f} s)", flush=True)

    # The old code path, same data, same run: every figure family draws its own resample weights
    # (what the report did before ``shared_resamples``).
    def page_figures():
        tbl = ag.LabelTable.from_rows(labels, ag.SAFETY_LABELS)
        ag.label_agreement(tbl, ordinal=True, n_boot=args.boot, seed=0)
        ag.category_agreement(categories, CODES, n_boot=args.boot, seed=0)
        ag.agreement_matrix(tbl)
        ag.consensus_rows(tbl)
        ag.annotator_agreement(tbl)
        rt = ag.RankingTable.from_rows(rankings)
        ag.ranking_agreement(rt, n_boot=args.boot, seed=0)
        ag.kendall_tau_matrix(rt)

    _, old_wall = timed(page_figures)
    old_cpu = CPU[0]
    print(f"old path (resample weights drawn per figure family): {old_wall:.2f} s wall, CPU {old_cpu:.2f} s", flush=True)

    print("metrics (what the project page computes, weights shared):", "wall, and CPU of this process")
    sharing = ag.shared_resamples()
    sharing.__enter__()
    table, t = timed(ag.LabelTable.from_rows, labels, ag.SAFETY_LABELS)
    row("LabelTable.from_rows (prompt labels)", t)
    safety, t = timed(ag.label_agreement, table, ordinal=True, n_boot=args.boot, seed=0)
    row("label_agreement: alpha nom.+ord., Fleiss, %, unanimous + bootstrap", t)
    per_cat, t = timed(ag.category_agreement, categories, CODES, n_boot=args.boot, seed=0)
    row(f"category_agreement: {len(CODES)} categories x 5 figures + bootstrap", t)
    matrix, t = timed(ag.agreement_matrix, table)
    row(f"agreement_matrix: Cohen kappa, {args.raters} x {args.raters} raters", t)
    consensus, t = timed(ag.consensus_rows, table)
    row("consensus_rows (majority rater)", t)
    stats, t = timed(ag.annotator_agreement, table)
    row("annotator_agreement: leave-one-out consensus, distribution", t)
    rtable, t = timed(ag.RankingTable.from_rows, rankings)
    row("RankingTable.from_rows (4 responses, tie groups)", t)
    ranking, t = timed(ag.ranking_agreement, rtable, n_boot=args.boot, seed=0)
    row("ranking_agreement: tau-b, W, alpha ordinal + bootstrap", t)
    tau_matrix, t = timed(ag.kendall_tau_matrix, rtable)
    row(f"kendall_tau_matrix: {args.raters} x {args.raters} raters", t)
    sharing.__exit__(None, None, None)
    page = sum(s for _, s in lines)
    print(f"  {'total (one ranking + safety project page)':<62} {page:8.2f} s  (CPU {cpu_total[0]:.2f} s)")
    print(f"  against the old path in this run: {old_wall / page:.2f}x wall, {old_cpu / max(cpu_total[0], 1e-9):.2f}x CPU")
    choice, t = timed(ag.choice_agreement, choices, n_boot=args.boot, seed=0)
    print(f"  {'choice_agreement (a pairwise project, same size) + bootstrap':<62} {t:8.2f} s")

    print("figures (sanity):")
    for name, est in safety.items():
        print(f"  labels {name:<20} {est.value:.3f} [{est.low:.3f}, {est.high:.3f}] on {est.n_items} items")
    for name, est in ranking.items():
        print(f"  ranking {name:<19} {est.value:.3f} [{est.low:.3f}, {est.high:.3f}] on {est.n_items} items")
    s1 = per_cat["S1"]["alpha_nominal"]
    print(f"  category S1 alpha          {s1.value:.3f} [{s1.low:.3f}, {s1.high:.3f}]")
    print(f"  choices percent agreement  {choice['percent_agreement'].value:.3f}")

    print("baselines (same data, same run):")
    given: dict[tuple[str, int], str] = {(r, i): v for r, i, v in labels}
    by_rater: dict[str, dict[int, str]] = {}
    for (r, i), v in given.items():
        by_rater.setdefault(r, {})[i] = v
    names = list(by_rater)
    start = time.perf_counter()
    n_pairs = 0
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            xa, xb = by_rater[names[a]], by_rater[names[b]]
            shared = [i for i in xa if i in xb]
            if len(shared) >= 2:
                cohen_kappa_score([xa[i] for i in shared], [xb[i] for i in shared])
            n_pairs += 1
    sk = time.perf_counter() - start
    ours_kappa = dict(lines)[f"agreement_matrix: Cohen kappa, {args.raters} x {args.raters} raters"]
    print(f"  scikit-learn cohen_kappa_score per pair ({n_pairs} pairs): {sk:.2f} s"
          f" vs agreement_matrix {ours_kappa:.2f} s: {sk / ours_kappa:.0f}x")

    import krippendorff

    data = np.full((len(table.raters), len(table.items)), np.nan)
    data[table.rater, table.item] = table.code
    rng = np.random.default_rng(0)
    sample = 20
    start = time.perf_counter()
    for _ in range(sample):
        idx = rng.integers(0, data.shape[1], data.shape[1])
        krippendorff.alpha(reliability_data=data[:, idx], level_of_measurement="nominal")
    naive = (time.perf_counter() - start) / sample * args.boot
    ours = dict(lines)["label_agreement: alpha nom.+ord., Fleiss, %, unanimous + bootstrap"]
    print(f"  krippendorff.alpha per resample, x{args.boot} (from {sample}): {naive:.2f} s"
          f" vs label_agreement (5 figures) {ours:.2f} s: {naive / ours:.0f}x")

    e, f = ag._entry_pairs(rtable.item)
    pick = np.random.default_rng(1).choice(e.size, size=min(2000, e.size), replace=False)
    start = time.perf_counter()
    for k in pick:
        x, y = rtable.ranks[e[k]], rtable.ranks[f[k]]
        kendalltau(x, y, variant="b")
    naive_tau = (time.perf_counter() - start) / pick.size * e.size
    ours_tau = dict(lines)[f"kendall_tau_matrix: {args.raters} x {args.raters} raters"]
    print(f"  scipy kendalltau per (pair, item), x{e.size:,} (from {pick.size}): {naive_tau:.2f} s"
          f" vs kendall_tau_matrix {ours_tau:.2f} s: {naive_tau / ours_tau:.0f}x")

    print("discretion (HH-RLHF-sized: 300 rows, 21 principles, 6 annotators):")
    rng = np.random.default_rng(2)
    p = rng.choice([1.0, -1.0, np.nan], size=(300, 21), p=[0.08, 0.05, 0.87])
    annotators = {"human": np.ones(300)}
    for k in range(5):
        noisy = np.sign(np.nan_to_num(p[:, k : k + 4]).sum(axis=1) + rng.normal(size=300))
        annotators[f"juror{k}"] = np.where(rng.random(300) < 0.1, np.nan, noisy)
    report, t = timed(disc.discretion, p, annotators, n_boot=0)
    print(f"  point figures (DA, PS, w*, DD)                                 {t:8.2f} s")
    report, t = timed(disc.discretion, p, annotators, n_boot=args.discretion_boot, seed=0)
    print(f"  with bootstrap, n_boot {args.discretion_boot:<5} (w* refitted per resample)          {t:8.2f} s")
    os_load = os.getloadavg()[0]
    print(f"load average (1 min) at the end: {os_load:.1f} on {os.cpu_count()} cores")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")
    target = "met" if page < 5 else "NOT met"
    print(f"page of agreement metrics at {len(labels):,} annotations: {page:.2f} s wall, {cpu_total[0]:.2f} s CPU,"
          f" target < 5 s {target}")


if __name__ == "__main__":
    main()
