"""Export benchmark: DPO export speed and peak memory at 100k and 1M pairwise annotations.

    DATABASE_URL=postgres://postgres@localhost:5432/tribunal_bench_export \\
        .venv/bin/python bench/export.py [--sizes 100000,1000000] [--keep]

Builds its own scratch PostgreSQL database (dropped and re-created; the name comes from
DATABASE_URL, default ``tribunal_bench_export``), migrates it, and generates one project per size
with N items, 2 responses each and N pairwise annotations (``INSERT ... SELECT generate_series``,
not the ORM). Each export then runs in a fresh child process, so its peak RSS is its own:

- ``stream``: ``exports.pipeline.run_export`` (the code the job and the command run), DPO,
  standard style, JSONL + Parquet;
- ``naive`` (baseline, 100k only): what a quick ORM export does — load every annotation with
  ``select_related`` into a list, build every row in memory, ``json.dump`` the list.

Prints rows/s, peak RSS and RSS growth during the export, and the speed ratio against the
baseline at 100k. Memory must stay flat from 100k to 1M.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))
DEFAULT_URL = "postgres://postgres@localhost:5432/tribunal_bench_export"


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("TRIBUNAL_VAR_DIR", str(Path(tempfile.gettempdir()) / "tribunal_bench_export_var"))
    import django

    django.setup()


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- building the data --------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def build(sizes: list[int]) -> dict[int, str]:
    from django.core.management import call_command
    from django.db import connection

    from annotation import services

    call_command("migrate", verbosity=0)
    services.roles_ensure_groups()
    version = [v for v in services.taxonomy_load_presets() if v.taxonomy.slug == "aegis-2.0"][0]
    slugs = {}
    for n in sizes:
        slug = f"bench-{n}"
        project = services.project_create(slug=slug, name=f"Bench {n}", taxonomy_version=version, created_by=None)
        t0 = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute(
                """
                INSERT INTO annotation_item (project_id, external_id, prompt, metadata, content_hash, source_file,
                                             priority, is_gold, created_at)
                SELECT %s, 'b-' || g,
                       jsonb_build_array(jsonb_build_object('role', 'user', 'content',
                           'Question ' || g || ': how do I keep a sourdough starter alive while I travel for two weeks?')),
                       '{}'::jsonb, md5(%s || ':' || g), '', 0, false, now()
                FROM generate_series(1, %s) AS g
                """,
                [project.pk, slug, n],
            )
            cur.execute(
                """
                INSERT INTO annotation_response (item_id, position, text, model_name, origin, metadata, created_at)
                SELECT i.id, p.pos,
                       CASE p.pos WHEN 0 THEN 'Feed it, then refrigerate it: a fed starter keeps for about two weeks in the fridge. Item ' || i.id
                                  ELSE 'Just leave it on the counter; it will be fine. Item ' || i.id END,
                       '', 'imported', '{}'::jsonb, now()
                FROM annotation_item i CROSS JOIN (VALUES (0), (1)) AS p(pos)
                WHERE i.project_id = %s
                """,
                [project.pk],
            )
            cur.execute(
                """
                INSERT INTO annotation_annotation (project_id, item_id, source, source_detail, pair_a_id, pair_b_id,
                    pair_choice, pair_strength, prompt_label, prompt_categories, rationale, principles_conflicted,
                    idempotency_key, retracted, created_at)
                SELECT %s, i.id, 'import', 'bench', r0.id, r1.id,
                       CASE WHEN i.id %% 5 = 0 THEN 'b' ELSE 'a' END, 1 + i.id %% 3, '', '[]'::jsonb, '', false, '', false, now()
                FROM annotation_item i
                JOIN annotation_response r0 ON r0.item_id = i.id AND r0.position = 0
                JOIN annotation_response r1 ON r1.item_id = i.id AND r1.position = 1
                WHERE i.project_id = %s
                """,
                [project.pk, project.pk],
            )
            cur.execute("ANALYZE")
        print(f"built {slug}: {n} items, {2 * n} responses, {n} pairwise annotations in {time.perf_counter() - t0:.1f} s",
              flush=True)
        slugs[n] = slug
    return slugs


# --- one measured run (in a child process) -------------------------------------------------------


def run_one(kind: str, slug: str, out: Path) -> dict:
    from annotation.models import Project

    project = Project.objects.select_related("taxonomy_version__taxonomy").get(slug=slug)
    import pandas  # noqa: F401  (pyarrow loads it on first conversion)
    import pyarrow.parquet  # noqa: F401

    import exports.pipeline  # noqa: F401  (libraries loaded before the baseline RSS is taken)

    before = rss_mib()
    t0 = time.perf_counter()
    if kind == "stream":
        from exports.options import build_options
        from exports.pipeline import run_export

        options = build_options({"format": "dpo", "source": "human-only", "outputs": ["jsonl", "parquet"],
                                 "chunk_size": 2000})
        manifest = run_export(project=project, options=options, out_dir=out)
        rows = manifest["counts"]["rows_total"]
    else:
        from annotation.models import Annotation

        annotations = list(
            Annotation.objects.filter(project=project).select_related("item", "pair_a", "pair_b").order_by("item_id")
        )
        data = []
        for a in annotations:
            chosen, rejected = (a.pair_a, a.pair_b) if a.pair_choice == "a" else (a.pair_b, a.pair_a)
            assert chosen is not None and rejected is not None  # the bench projects hold pairwise records only
            data.append({"item_id": a.item_id, "prompt": a.item.prompt[0]["content"], "chosen": chosen.text,
                         "rejected": rejected.text, "label_source": a.source})
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "train.json", "w") as fh:
            json.dump(data, fh)
        rows = len(data)
    seconds = time.perf_counter() - t0
    return {"kind": kind, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "rss_before_mib": before, "peak_rss_mib": peak_rss_mib(), "growth_mib": peak_rss_mib() - before}


def measure(url: str, kind: str, slug: str, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, slug, str(out)],
        env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {kind} {slug} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (default: drop it)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SLUG", "OUT"))
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not urlparse(url).path.lstrip("/").startswith("tribunal_bench"):
        raise SystemExit(f"refusing to drop {url}: the bench database name must start with tribunal_bench")
    if args.child:
        _setup_django(url)
        kind, slug, out = args.child
        print(json.dumps(run_one(kind, slug, Path(out))))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    recreate_database(url)
    _setup_django(url)
    slugs = build(sizes)
    from django.db import connections

    connections.close_all()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        for n in sizes:
            results.append((n, measure(url, "stream", slugs[n], Path(tmp) / f"stream-{n}")))
            print(f"stream n={n}: {json.dumps(results[-1][1])}", flush=True)
        baseline_n = min(sizes)
        naive = measure(url, "naive", slugs[baseline_n], Path(tmp) / "naive")
        print(f"naive  n={baseline_n}: {json.dumps(naive)}", flush=True)
    print()
    print(f"{'run':<28}{'rows':>10}{'seconds':>10}{'rows/s':>12}{'peak RSS MiB':>14}{'growth MiB':>12}")
    for _n, r in results:
        print(f"{'stream DPO jsonl+parquet':<28}{r['rows']:>10}{r['seconds']:>10.1f}{r['rows_per_s']:>12.0f}"
              f"{r['peak_rss_mib']:>14.1f}{r['growth_mib']:>12.1f}")
    print(f"{'naive ORM baseline':<28}{naive['rows']:>10}{naive['seconds']:>10.1f}{naive['rows_per_s']:>12.0f}"
          f"{naive['peak_rss_mib']:>14.1f}{naive['growth_mib']:>12.1f}")
    same = dict(results)[baseline_n]
    print(f"\nspeed ratio stream/naive at {baseline_n}: {same['rows_per_s'] / naive['rows_per_s']:.2f}x; "
          f"memory growth stream {same['growth_mib']:.1f} MiB vs naive {naive['growth_mib']:.1f} MiB")
    if len(results) > 1:
        small, large = results[0][1], results[-1][1]
        print(f"peak RSS {results[0][0]} → {results[-1][0]} rows: {small['peak_rss_mib']:.1f} → {large['peak_rss_mib']:.1f} MiB "
              f"({large['peak_rss_mib'] - small['peak_rss_mib']:+.1f} MiB for {results[-1][0] // results[0][0]}x the rows)")
    if not args.keep:
        connections.close_all()
        import psycopg

        parsed = urlparse(url)
        with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


if __name__ == "__main__":
    main()
