from django.apps import AppConfig


class JuryConfig(AppConfig):
    name = "jury"
    verbose_name = "Jury"

    def ready(self) -> None:
        from jury import signals

        signals.connect()
