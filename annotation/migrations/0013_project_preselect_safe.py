"""Project.preselect_safe: the workbench pre-selects nothing unless a project opts in (issue 13, point 4).

Only the project table changes; the append-only triggers of 0002 are on other tables."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("annotation", "0012_metrics_snapshot")]

    operations = [
        migrations.AddField(
            model_name="project",
            name="preselect_safe",
            field=models.BooleanField(
                default=False,
                help_text="Start every response's safety label at 'safe' in the workbench. Off by default: a "
                "pre-selected answer biases the data towards it.",
            ),
        ),
    ]
