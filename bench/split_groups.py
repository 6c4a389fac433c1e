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


class Rollback(Exception): pass
try:
    with transaction.atomic():
        versions = {v.taxonomy.slug: v for v in services.taxonomy_load_presets()}
        p = services.project_create(slug="grpbench", name="g", taxonomy_version=versions["aegis-2.0"])
        N = 100_000
        with connection.cursor() as c:
            c.execute(f"""INSERT INTO {Item._meta.db_table} (project_id, external_id, prompt, metadata, content_hash, source_file, source_line, priority, is_gold, created_at)
              SELECT %s, '', jsonb_build_array(jsonb_build_object('role','user','content','first turn ' || (g %% 90000)),
                                               jsonb_build_object('role','assistant','content','reply ' || g)),
                     '{{}}'::jsonb, md5(g::text), '', NULL, 0, false, now() FROM generate_series(1, %s) g""", [p.pk, N])
        t = time.perf_counter(); g = split_groups(p); t1 = time.perf_counter() - t
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter(); g2 = groups_in_python(Item.objects.filter(project=p).values_list("id", "prompt", "metadata__oasst__message_tree_id").iterator(chunk_size=2000)); t2 = time.perf_counter() - t
        rss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"items {N}; linked items {len(g)}; groups {len(set(g.values()))}")
        print(f"postgres path {t1:.2f} s (peak RSS {rss1:.0f} MiB); python path {t2:.2f} s (peak RSS {rss2:.0f} MiB); equal {g == g2}")
        print(f"ratio python/postgres: {t2 / t1:.2f}x")
        raise Rollback
except Rollback:
    pass
