from django.apps import AppConfig


class EditsConfig(AppConfig):
    name = "jury.edits"
    label = "edits"
    verbose_name = "Synthetic edits"
    default_auto_field = "django.db.models.BigAutoField"
