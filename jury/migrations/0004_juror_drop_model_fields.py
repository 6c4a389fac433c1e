# Step 3 of 3: a juror's model lives in its ModelSpec; drop the copies on Juror.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("jury", "0003_juror_model_spec_data"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="juror", name="juror_batch_size_positive"),
        migrations.RemoveConstraint(model_name="juror", name="juror_max_length_min"),
        migrations.AlterField(
            model_name="juror",
            name="model_spec",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="jurors", to="jury.modelspec"),
        ),
    ] + [
        migrations.RemoveField(model_name="juror", name=name)
        for name in ("backend", "model", "endpoint", "api_key_env", "use_chat_template", "device", "batch_size",
                     "max_length", "timeout_s", "max_retries")
    ]
