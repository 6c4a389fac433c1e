from django.apps import AppConfig


class GuardConfig(AppConfig):
    name = "exports.guard"
    label = "guard"
    verbose_name = "Guard models"
