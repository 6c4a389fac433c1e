"""Discretion on HH-RLHF (Buyl et al., ``../shared/REFERENCE.md`` §2) through the product's own path.

    .venv/bin/python bench/discretion_hh.py --pairs 300 --seed 0 [--principles 17] [--boot 1000]

What it does, with the database of DATABASE_URL (a project of its own, ``hh-discretion-<stamp>``):

1. samples ``--pairs`` pairs (seeded) of the HH-RLHF harmless-base test split
   (``../shared/data/hh-rlhf/harmless-base-test.jsonl.gz``) and imports them with the real
   ``hh-rlhf`` importer: each item is the shared conversation, the chosen and the rejected reply,
   and the human preference of the data (chosen better) as an imported judgment (rater ``import``);
2. runs the DEFAULT jury (the two packaged CPU models) on them, in this process (Celery eager):
   the principles task (p_i per principle and pair, both orders, recorded through
   ``annotation.services.principle_preferences_record``) and the preference task (the jury's
   decision and each juror's own choice, recorded as annotations);
3. reads everything back from ``annotation`` only (``annotation.metrics.selectors.discretion_inputs``)
   and prints the discretion report (``annotation.metrics.report.discretion_block``): row classes,
   DA per annotator, w* ranking, DD against the human preference, bootstrap mean ± SD.

``--principles`` keeps some principles of the default set (codes, or the first K; all 17 by
default): the principles task costs 2 orders x 2 jurors x K forward passes per pair, the dominant
cost on CPU.
``--measure`` stops after timing the jury on the sample (use a small --pairs) and prints the
estimated time per pair.

The tiny CPU jurors (SmolLM2-135M, Gemma 3 270M) make p_i noisy: what this measures is the
pipeline on real data, not the discretion of a capable judge; a GPU juror is the real use.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TRIBUNAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT))


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import django

    django.setup()


def sample_pairs(n: int, seed: int) -> list[dict]:
    with gzip.open(DATA / "hh-rlhf" / "harmless-base-test.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    rng = random.Random(seed)
    return rng.sample(rows, min(n, len(rows)))


def _f(x, digits: int = 3) -> str:
    return "-" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--principles", default="",
                        help="principle codes to keep, comma-separated, or a number K (the first K); default all")
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--project", default="", help="reuse this project of an earlier run (skips the import; "
                        "a task whose run is done is not run again)")
    parser.add_argument("--principles-pairs", type=int, default=0,
                        help="run the principles task on the first N pairs only (0: all)")
    parser.add_argument("--measure", action="store_true", help="time the jury only, print seconds per pair")
    parser.add_argument("--json", type=Path, help="also write the discretion block here")
    args = parser.parse_args()
    _django()

    from django.contrib.auth import get_user_model

    from annotation import services
    from annotation.importing import import_file
    from annotation.metrics.report import discretion_block
    from annotation.metrics.selectors import discretion_inputs
    from annotation.models import Principle, PrincipleSet, Project
    from config.celery import app
    from jury import services as jury_services
    from jury.models import JuryRun

    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    services.roles_ensure_groups()
    versions = services.taxonomy_load_presets()
    default_set = services.principle_set_load_default()
    pset = default_set
    if args.principles:
        everything = list(default_set.principles.order_by("order", "code"))
        if args.principles.isdigit():
            keep = everything[: int(args.principles)]
        else:
            wanted = [c.strip() for c in args.principles.split(",") if c.strip()]
            keep = [p for p in everything if p.code in wanted]
            if len(keep) != len(wanted):
                raise SystemExit(f"unknown principle codes; have {[p.code for p in everything]}")
        slug = "hh-" + "-".join(p.code for p in keep)[:56]
        pset, created = PrincipleSet.objects.get_or_create(slug=slug, defaults={"name": f"{len(keep)} of the default"})
        if created:
            for p in keep:
                Principle.objects.create(principle_set=pset, code=p.code, short=p.short, text=p.text, group=p.group,
                                         order=p.order)
    if args.project:
        project = Project.objects.get(slug=args.project)
        pset = project.principle_set or pset
        n_items = project.items.count()
        print(f"project {project.slug}: {n_items} pairs, {pset.principles.count()} principles", flush=True)
    else:
        stamp = time.strftime("%Y%m%d%H%M%S")
        user = get_user_model().objects.filter(is_superuser=True).first()
        project = services.project_create(
            slug=f"hh-discretion-{stamp}", name=f"HH-RLHF discretion {stamp}", taxonomy_version=versions[0],
            mode=Project.Mode.PAIRWISE, principle_set=pset, created_by=user,
        )
        rows = sample_pairs(args.pairs, args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "hh-sample.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            batch = import_file(project=project, path=path, source_name=path.name, fmt="hh-rlhf")
        n_items = batch.items_created
        print(f"project {project.slug}: imported {n_items} pairs ({batch.error_count} errors), "
              f"{pset.principles.count()} principles", flush=True)
    jury = jury_services.jury_ensure_default()
    timings = {}
    ids = list(project.items.order_by("id").values_list("id", flat=True))
    for task in ("preference", "principles"):
        if JuryRun.objects.filter(project=project, task=task, status=JuryRun.Status.DONE).exists():
            print(f"{task}: done in an earlier run", flush=True)
            continue
        subset = ids[: args.principles_pairs] if task == "principles" and args.principles_pairs else ids
        t0 = time.perf_counter()
        run = jury_services.jury_run_start(project=project, jury=jury, task=task, item_ids=subset)
        run.refresh_from_db()
        timings[task] = time.perf_counter() - t0
        print(f"{task}: run {run.pk} {run.status} on {len(subset)} pairs in {timings[task]:.0f} s "
              f"({timings[task] / max(len(subset), 1):.1f} s per pair), errors {run.errors[:2]}", flush=True)
        if run.status != JuryRun.Status.DONE:
            raise SystemExit(f"the {task} run did not finish: {run.status}")
    if args.measure:
        total = sum(timings.values()) / max(n_items, 1)
        print(f"measured: {total:.1f} s per pair (both tasks); 40 min fit {int(2400 / total)} pairs")
        return
    t0 = time.perf_counter()
    inputs = discretion_inputs(project=project)
    block = discretion_block(inputs, n_boot=args.boot, seed=args.seed)
    elapsed = time.perf_counter() - t0
    if args.json:
        args.json.write_text(json.dumps(block, indent=1))
    print(f"\nDiscretion on HH-RLHF harmless-base test: {block['n_rows']} pairs (seed {args.seed}), "
          f"{len(block['principles'])} principles, p_i from {block['jury']}, bootstrap n={block['n_boot']} "
          f"(metrics {elapsed:.1f} s)")
    print("row classes: " + ", ".join(f"{k} {v} ({v / max(block['n_rows'], 1):.1%})" for k, v in block["classes"].items()))
    print(f"reference (human preference of the data): {block['reference']}")
    print(f"{'annotator':34} {'kind':7} {'pairs':>5} {'DA':>6} {'DA mean ± SD':>16} {'DD vs human':>11} {'DD mean ± SD':>16}")
    for name in block["annotators"]:
        a = block["annotator"][name]
        dd = block["dd_reference"].get(name, {})
        print(f"{name:34} {block['kinds'].get(name, ''):7} {a['n_rows']:>5} {_f(a['da']):>6} "
              f"{_f(a['da_boot'][0]) + ' ± ' + _f(a['da_boot'][1]):>16} {_f(dd.get('value')):>11} "
              f"{_f(dd.get('mean')) + ' ± ' + _f(dd.get('sd')):>16}")
    print("\nw* (principle priority; rank 1 highest) per annotator:")
    codes = block["principles"]
    for name in block["annotators"]:
        a = block["annotator"][name]
        order = sorted(range(len(codes)), key=lambda k: a["rank"][k])
        print(f"  {name}: " + ", ".join(
            f"{codes[k]} {a['w'][k] if isinstance(a['w'][k], str) else round(a['w'][k], 2)}" for k in order))
    ps = block["annotator"][block["reference"]]
    print(f"\nPS n_ij (conflict pairs) of the reference: total {sum(sum(r) for r in ps['n']) // 2}")


if __name__ == "__main__":
    main()
