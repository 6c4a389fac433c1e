"""Seed version 1 of the default editor templates (REFERENCE §3); existing names are left alone."""
from django.db import migrations


def seed(apps, schema_editor):
    from jury.edits.prompts import DEFAULT_TEMPLATES

    EditTemplate = apps.get_model("edits", "EditTemplate")
    for name, (direction, text) in DEFAULT_TEMPLATES.items():
        if not EditTemplate.objects.filter(name=name).exists():
            EditTemplate.objects.create(name=name, direction=direction, version=1, text=text,
                                        notes="Default (REFERENCE §3).")


class Migration(migrations.Migration):
    dependencies = [("edits", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
