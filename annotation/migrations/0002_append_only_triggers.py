"""Database-level guarantee that annotations are append-only.

UPDATE and DELETE on annotation rows (and their per-response safety labels and principle links)
raise in the database itself, so neither a queryset ``.update()``, a cascade, nor raw SQL can
rewrite or drop a judgment. Corrections are new rows that point at the old one (``supersedes``).
Both PostgreSQL and SQLite get a trigger. TRUNCATE (used by test database flushes) is not a row
operation and is unaffected.
"""
from django.db import migrations

TABLES = ["annotation_annotation", "annotation_responsesafety", "annotation_annotation_principles"]

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION tribunal_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tribunal: % on % is not allowed; annotations are append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    conn = schema_editor.connection
    if conn.vendor == "postgresql":
        # Through a plain cursor with no parameters, so psycopg leaves the '%' of RAISE alone.
        with conn.cursor() as cursor:
            cursor.execute(PG_FUNCTION)
        for table in TABLES:
            schema_editor.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION tribunal_append_only();"
            )
    elif conn.vendor == "sqlite":
        for table in TABLES:
            for op in ("UPDATE", "DELETE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'tribunal: {op} on {table} is not allowed; "
                    f"annotations are append-only'); END;"
                )


def backwards(apps, schema_editor):
    conn = schema_editor.connection
    if conn.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
        schema_editor.execute("DROP FUNCTION IF EXISTS tribunal_append_only();")
    elif conn.vendor == "sqlite":
        for table in TABLES:
            for op in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op};")


class Migration(migrations.Migration):
    dependencies = [("annotation", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
