# Step 2 of 3: every existing juror gets a ModelSpec with the same values (named after the juror),
# so runs, verdicts and load_default_jury see the same models as before. Reversible.
from django.db import migrations

FIELDS = ("backend", "model", "endpoint", "api_key_env", "use_chat_template", "device", "batch_size", "max_length",
          "timeout_s", "max_retries")


def forwards(apps, schema_editor):
    Juror = apps.get_model("jury", "Juror")
    ModelSpec = apps.get_model("jury", "ModelSpec")
    taken = set(ModelSpec.objects.values_list("name", flat=True))
    for juror in Juror.objects.filter(model_spec__isnull=True).order_by("pk"):
        name, n = juror.name, 1
        while name in taken:
            n += 1
            name = f"{juror.name}-{n}"[:100]
        taken.add(name)
        spec = ModelSpec.objects.create(
            name=name, description=juror.description, created_at=juror.created_at,
            **{f: getattr(juror, f) for f in FIELDS},
        )
        Juror.objects.filter(pk=juror.pk).update(model_spec=spec)


def backwards(apps, schema_editor):
    Juror = apps.get_model("jury", "Juror")
    for juror in Juror.objects.select_related("model_spec").exclude(model_spec__isnull=True):
        Juror.objects.filter(pk=juror.pk).update(**{f: getattr(juror.model_spec, f) for f in FIELDS})


class Migration(migrations.Migration):

    dependencies = [
        ("jury", "0002_modelspec"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
