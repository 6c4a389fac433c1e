"""``Item.filled``: how many live (active or done) slotted assignments an item has, kept by triggers.

The queue used to count every item's live assignments in a correlated subquery, so a claim got
slower as the project filled up (each claim scanned the full items ahead of the first open one).
With the counter the claim reads one column. It is the database's own bookkeeping:

- an AFTER INSERT/UPDATE/DELETE trigger on ``annotation_assignment`` adds or subtracts 1 whenever
  a row starts or stops being live-with-a-slot (``status`` in active/done and ``slot`` not null),
  in the same transaction as the change; ``filled = filled ± 1`` is computed on the latest row
  version, so concurrent transactions cannot lose an update;
- guards on ``annotation_item`` ignore any other write to the column (a stale ``item.save()``,
  the admin, raw SQL) and start new items at 0, so the counter cannot drift from the rows.

A lease that lapsed but is still marked active counts as filled until a claimer expires it; the
claim query adds those items explicitly. PostgreSQL and SQLite both get the triggers (on SQLite
the guard recounts, which is exact there because SQLite has one writer at a time). A later
migration that makes SQLite rebuild ``annotation_assignment`` or ``annotation_item`` must create
them again (see ``install``).
"""
from django.db import migrations, models


PG_INSTALL = [
    f"""
CREATE OR REPLACE FUNCTION tribunal_assignment_filled() RETURNS trigger AS $$
DECLARE
    was_live boolean := false;
    is_live boolean := false;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        was_live := OLD.status IN ('active', 'done') AND OLD.slot IS NOT NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        is_live := NEW.status IN ('active', 'done') AND NEW.slot IS NOT NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND was_live = is_live AND OLD.item_id = NEW.item_id THEN
        RETURN NULL;
    END IF;
    IF was_live THEN
        UPDATE annotation_item SET filled = filled - 1 WHERE id = OLD.item_id;
    END IF;
    IF is_live THEN
        UPDATE annotation_item SET filled = filled + 1 WHERE id = NEW.item_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
""",
    """
CREATE OR REPLACE FUNCTION tribunal_item_filled_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.filled := 0;
    ELSIF NEW.filled IS DISTINCT FROM OLD.filled AND pg_trigger_depth() < 2 THEN
        -- Only tribunal_assignment_filled (one trigger level down) may change the counter.
        NEW.filled := OLD.filled;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
""",
    "CREATE TRIGGER annotation_assignment_filled AFTER INSERT OR UPDATE OR DELETE ON annotation_assignment "
    "FOR EACH ROW EXECUTE FUNCTION tribunal_assignment_filled();",
    "CREATE TRIGGER annotation_item_filled_guard BEFORE INSERT OR UPDATE ON annotation_item "
    "FOR EACH ROW EXECUTE FUNCTION tribunal_item_filled_guard();",
]
PG_REMOVE = [
    "DROP TRIGGER IF EXISTS annotation_assignment_filled ON annotation_assignment;",
    "DROP TRIGGER IF EXISTS annotation_item_filled_guard ON annotation_item;",
    "DROP FUNCTION IF EXISTS tribunal_assignment_filled();",
    "DROP FUNCTION IF EXISTS tribunal_item_filled_guard();",
]


def _count(ref: str) -> str:
    return (
        f"(SELECT COUNT(*) FROM annotation_assignment a WHERE a.item_id = {ref} "
        f"AND a.status IN ('active', 'done') AND a.slot IS NOT NULL)"
    )


SQLITE_INSTALL = [
    f"CREATE TRIGGER annotation_assignment_filled_ins AFTER INSERT ON annotation_assignment "
    f"WHEN NEW.status IN ('active', 'done') AND NEW.slot IS NOT NULL "
    f"BEGIN UPDATE annotation_item SET filled = {_count('NEW.item_id')} WHERE id = NEW.item_id; END;",
    f"CREATE TRIGGER annotation_assignment_filled_upd AFTER UPDATE ON annotation_assignment "
    f"BEGIN UPDATE annotation_item SET filled = {_count('annotation_item.id')} "
    f"WHERE id IN (OLD.item_id, NEW.item_id); END;",
    f"CREATE TRIGGER annotation_assignment_filled_del AFTER DELETE ON annotation_assignment "
    f"WHEN OLD.status IN ('active', 'done') AND OLD.slot IS NOT NULL "
    f"BEGIN UPDATE annotation_item SET filled = {_count('OLD.item_id')} WHERE id = OLD.item_id; END;",
    # Any other write of the column is put right at once (recursive triggers are off in SQLite).
    f"CREATE TRIGGER annotation_item_filled_guard AFTER UPDATE OF filled ON annotation_item "
    f"WHEN NEW.filled <> {_count('NEW.id')} "
    f"BEGIN UPDATE annotation_item SET filled = {_count('NEW.id')} WHERE id = NEW.id; END;",
    "CREATE TRIGGER annotation_item_filled_new AFTER INSERT ON annotation_item WHEN NEW.filled <> 0 "
    "BEGIN UPDATE annotation_item SET filled = 0 WHERE id = NEW.id; END;",
]
SQLITE_REMOVE = [
    f"DROP TRIGGER IF EXISTS {name};"
    for name in (
        "annotation_assignment_filled_ins", "annotation_assignment_filled_upd", "annotation_assignment_filled_del",
        "annotation_item_filled_guard", "annotation_item_filled_new",
    )
]


def install(apps, schema_editor):
    conn = schema_editor.connection
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:  # plain cursor, no parameters: psycopg leaves the SQL alone
            for sql in PG_REMOVE + PG_INSTALL:
                cursor.execute(sql)
            # Existing rows: count once, past the guard (trigger depth 1 would ignore the write).
            cursor.execute("ALTER TABLE annotation_item DISABLE TRIGGER annotation_item_filled_guard;")
            cursor.execute(f"UPDATE annotation_item SET filled = {_count('annotation_item.id')};")
            cursor.execute("ALTER TABLE annotation_item ENABLE TRIGGER annotation_item_filled_guard;")
    elif conn.vendor == "sqlite":
        for sql in SQLITE_REMOVE:
            schema_editor.execute(sql)
        schema_editor.execute(f"UPDATE annotation_item SET filled = {_count('annotation_item.id')};")
        for sql in SQLITE_INSTALL:
            schema_editor.execute(sql)


def remove(apps, schema_editor):
    conn = schema_editor.connection
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            for sql in PG_REMOVE:
                cursor.execute(sql)
    elif conn.vendor == "sqlite":
        for sql in SQLITE_REMOVE:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0004_importbatch_claim")]

    operations = [
        migrations.AddField(
            model_name="item",
            name="filled",
            field=models.PositiveSmallIntegerField(
                default=0, editable=False,
                help_text="Live (active or done) slotted assignments; the queue skips items where this reaches the overlap.",
            ),
        ),
        migrations.RunPython(install, remove),
    ]
