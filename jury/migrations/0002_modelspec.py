# ModelSpec: "which model, where, how loaded", split out of Juror (step 1 of 3: the new table and a
# nullable link; 0003 copies every juror's values into its own spec; 0004 drops the old columns).
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("jury", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ModelSpec",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.SlugField(max_length=100, unique=True)),
                ("description", models.TextField(blank=True)),
                ("backend", models.CharField(help_text="A registered backend kind: packaged | transformers | openai | ...", max_length=32)),
                ("model", models.CharField(help_text="packaged: smollm2-135m-instruct | gemma3-270m; transformers: a local folder; openai: the model name the server expects.", max_length=500)),
                ("endpoint", models.URLField(blank=True, help_text="openai backend: base URL, e.g. http://host:8000/v1", max_length=500)),
                ("api_key_env", models.CharField(blank=True, help_text="openai backend: name of the environment variable holding the API key.", max_length=100)),
                ("use_chat_template", models.BooleanField(default=True, help_text="Wrap prompts in the tokenizer's chat template when it has one.")),
                ("dtype", models.CharField(choices=[("auto", "auto (half on CUDA, float32 on CPU)"), ("float32", "float32"), ("float16", "float16"), ("bfloat16", "bfloat16")], default="auto", max_length=16)),
                ("device", models.CharField(blank=True, help_text="auto | cpu | cuda | cuda:N; blank = TRIBUNAL_DEVICE.", max_length=32)),
                ("batch_size", models.PositiveSmallIntegerField(default=8)),
                ("max_length", models.PositiveIntegerField(default=1024, help_text="Most tokens in one context.")),
                ("timeout_s", models.FloatField(default=60.0, help_text="openai backend: seconds per HTTP request.")),
                ("max_retries", models.PositiveSmallIntegerField(default=3, help_text="openai backend: retries of transient errors.")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "verbose_name": "model spec",
                "ordering": ["name"],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("batch_size__gte", 1)), name="modelspec_batch_size_positive"),
                    models.CheckConstraint(condition=models.Q(("max_length__gte", 64)), name="modelspec_max_length_min"),
                ],
            },
        ),
        migrations.AddField(
            model_name="juror",
            name="model_spec",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="jurors", to="jury.modelspec"),
        ),
    ]
