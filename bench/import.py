"""Import throughput into PostgreSQL: responses imported per second, at 10k and 1M responses.

    .venv/bin/python bench/import.py                 # 10k and 1M responses
    .venv/bin/python bench/import.py --sizes 10000   # just 10k

It creates (and drops at the end) its own database, ``tribunal_bench_import`` on the server of
``BENCH_DATABASE_URL`` (default ``postgres://postgres@localhost:5432/tribunal_bench_import``),
migrates it, writes a synthetic own-format JSONL file (4 responses per item, ~1 KB of text per
item) and imports it through the real ``import_file`` (both passes: validation, then COPY writes
in one transaction). Baselines measured in the same run on the same data: the same records written
with Django ``bulk_create`` (batches of 2,000), and with one ORM ``create()`` per row (smaller
sample). Label Studio 1.23's ~2,700 tasks/s on this machine (from the issue) is quoted, not run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

RESPONSES_PER_ITEM = 4
WORDS = ("the model should answer clearly and briefly while staying safe and honest about what it knows "
         "and does not know so that people can rely on it for everyday questions").split()


def _text(seed: int, words: int) -> str:
    return " ".join(WORDS[(seed * 7 + k * 3) % len(WORDS)] for k in range(words)) + f" #{seed}"


def write_file(path: Path, responses: int, tag: str) -> int:
    items = responses // RESPONSES_PER_ITEM
    with open(path, "w", encoding="utf-8") as fh:
        for n in range(items):
            fh.write(json.dumps({
                "id": f"{tag}-{n}",
                "prompt": f"{tag} question {n}: " + _text(n, 20),
                "responses": [{"text": _text(n * 4 + k, 35), "model": f"model-{k}"} for k in range(RESPONSES_PER_ITEM)],
                "metadata": {"n": n},
            }) + "\n")
    return items


def setup_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,1000000", help="responses per run, comma-separated")
    parser.add_argument("--bulk-sample", type=int, default=100_000, help="responses for the bulk_create baseline")
    parser.add_argument("--orm-sample", type=int, default=4_000, help="responses for the per-row ORM baseline")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@localhost:5432/tribunal_bench_import")
    setup_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-only")
    scratch_var = None
    if "TRIBUNAL_VAR_DIR" not in os.environ:
        scratch_var = os.environ["TRIBUNAL_VAR_DIR"] = tempfile.mkdtemp(prefix="tribunal-bench-var-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.core.management import call_command
    from django.db import connection, transaction

    from annotation import services
    from annotation.importing import import_file
    from annotation.importing.formats import CategoryMap, ParseContext, parse_tribunal
    from annotation.importing.reader import ErrorLog, LineReader
    from annotation.models import Item, Response

    work = Path(tempfile.mkdtemp(prefix="tribunal-bench-import-"))
    try:
        call_command("migrate", verbosity=0)
        versions = {v.taxonomy.slug: v for v in services.taxonomy_load_presets()}

        def new_project(slug: str):
            return services.project_create(slug=slug, name=slug, taxonomy_version=versions["aegis-2.0"])

        print(f"PostgreSQL {connection.cursor().connection.info.server_version}, database {url.rsplit('/', 1)[1]}, "
              f"IMPORT_BATCH_SIZE={os.environ.get('IMPORT_BATCH_SIZE', 2000)}")
        print(f"{'what':<44}{'responses':>11}{'seconds':>10}{'responses/s':>14}")
        results: dict[int | str, float] = {}  # responses/s by size, and by baseline name
        for size in sizes:
            path = work / f"synthetic-{size}.jsonl"
            write_file(path, size, f"s{size}")
            mb = path.stat().st_size / 1e6
            project = new_project(f"bench-{size}")
            t0 = time.perf_counter()
            batch = import_file(project=project, path=path, source_name=path.name, background=False)
            elapsed = time.perf_counter() - t0
            assert batch.status == "done" and batch.responses_created == size, (batch.status, batch.errors[:3])
            results[size] = size / elapsed
            print(f"{'import_file (2 passes, COPY) ' + f'{mb:.0f} MB':<44}{size:>11,}{elapsed:>10.2f}{size / elapsed:>14,.0f}")
            path.unlink()

        # Baselines: the same kind of records, parsed by the same parser, written through the ORM.
        def records(path: Path):
            errors = ErrorLog(cap=10)
            ctx = ParseContext(errors=errors, categories=CategoryMap([], "none"), max_line_bytes=1 << 20)
            return parse_tribunal(LineReader(path, max_line_bytes=1 << 20, errors=errors), ctx)

        from annotation.importing.writer import content_hash

        def bulk_baseline(size: int) -> float:
            path = work / f"bulk-{size}.jsonl"
            write_file(path, size, f"b{size}")
            project = new_project(f"bulk-{size}")
            t0 = time.perf_counter()
            with transaction.atomic():
                chunk: list = []

                def flush() -> None:
                    items = Item.objects.bulk_create([
                        Item(project=project, external_id=r.external_id, prompt=r.prompt, metadata=r.metadata,
                             content_hash=content_hash(r), source_line=r.line) for r in chunk])
                    Response.objects.bulk_create([
                        Response(item=item, position=p, text=x.text, model_name=x.model)
                        for r, item in zip(chunk, items) for p, x in enumerate(r.responses)])
                    chunk.clear()

                for record in records(path):
                    chunk.append(record)
                    if len(chunk) == 500:
                        flush()
                flush()
            return time.perf_counter() - t0

        def orm_baseline(size: int) -> float:
            path = work / f"orm-{size}.jsonl"
            write_file(path, size, f"o{size}")
            project = new_project(f"orm-{size}")
            t0 = time.perf_counter()
            with transaction.atomic():
                for r in records(path):
                    item = Item.objects.create(project=project, external_id=r.external_id, prompt=r.prompt,
                                               metadata=r.metadata, content_hash=content_hash(r), source_line=r.line)
                    for p, x in enumerate(r.responses):
                        Response.objects.create(item=item, position=p, text=x.text, model_name=x.model)
            return time.perf_counter() - t0

        for label, size, fn in (("baseline: Django bulk_create (1 pass)", args.bulk_sample, bulk_baseline),
                                ("baseline: ORM create() per row", args.orm_sample, orm_baseline)):
            elapsed = fn(size)
            results[label] = size / elapsed
            print(f"{label:<44}{size:>11,}{elapsed:>10.2f}{size / elapsed:>14,.0f}")
        print(f"{'reference: Label Studio 1.23 (issue; not run)':<44}{'':>11}{'':>10}{'~2,700 tasks/s':>14}")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak_mb:.0f} MB")
        for size in sizes:
            print(f"import at {size:,}: {results[size] / results['baseline: Django bulk_create (1 pass)']:.1f}x "
                  f"bulk_create, {results[size] / results['baseline: ORM create() per row']:.0f}x per-row ORM, "
                  f"target 20,000/s {'met' if results[size] >= 20_000 else 'NOT met'}")
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        if scratch_var:
            shutil.rmtree(scratch_var, ignore_errors=True)
        if not args.keep_db:
            drop_database(url)


if __name__ == "__main__":
    main()
