"""Split grouping cost: ``exports.grouping.split_groups`` (PostgreSQL: shared keys found in the
database) against the portable Python path as the same-run baseline, on 100k items of which 20k
share a first turn (10k groups of two). Everything is made inside one transaction that is rolled
back, so any scratch database with the migrations applied will do.

    DATABASE_URL=postgres://postgres@localhost:5432/<db> SECRET_KEY=x .venv/bin/python manage.py shell < bench/split_groups.py
"""
import resource
import time

from django.db import connection, transaction

from annotation import services
from annotation.models import Item
from exports.grouping import groups_in_python, split_groups

N = 100_000


class Rollback(Exception):
    pass


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


try:
    with transaction.atomic():
        versions = {v.taxonomy.slug: v for v in services.taxonomy_load_presets()}
        project = services.project_create(slug="grpbench", name="g", taxonomy_version=versions["aegis-2.0"])
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {Item._meta.db_table} (project_id, external_id, prompt, metadata, content_hash,
                        source_file, source_line, priority, is_gold, created_at)
                    SELECT %s, '', jsonb_build_array(
                                 jsonb_build_object('role', 'user', 'content', 'first turn ' || (g %% 90000)),
                                 jsonb_build_object('role', 'assistant', 'content', 'reply ' || g)),
                           '{{}}'::jsonb, md5(g::text), '', NULL, 0, false, now()
                      FROM generate_series(1, %s) g""",
                [project.pk, N],
            )
        start = time.perf_counter()
        groups = split_groups(project)
        t_db, rss_db = time.perf_counter() - start, peak_mib()
        start = time.perf_counter()
        rows = Item.objects.filter(project=project).values_list("id", "prompt", "metadata__oasst__message_tree_id")
        baseline = groups_in_python(rows.iterator(chunk_size=2000))
        t_py, rss_py = time.perf_counter() - start, peak_mib()
        print(f"items {N}; linked items {len(groups)}; groups {len(set(groups.values()))}")
        print(f"postgres path {t_db:.2f} s (peak RSS {rss_db:.0f} MiB); python path {t_py:.2f} s "
              f"(peak RSS {rss_py:.0f} MiB); equal {groups == baseline}")
        print(f"ratio python/postgres: {t_py / t_db:.2f}x")
        raise Rollback
except Rollback:
    pass
