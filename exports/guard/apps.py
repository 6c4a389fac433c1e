from django.apps import AppConfig


class GuardConfig(AppConfig):
    name = "exports.guard"
    label = "guard"
    verbose_name = "Guard models"

    def ready(self) -> None:
        # A trained guard joins the jury as a backend kind; the factory is a dotted path, so this
        # imports no torch (the worker imports exports.guard.backend when it builds a guard juror).
        from exports.guard.backend import guard_spec_errors
        from jury.backends.registry import register_backend

        register_backend(
            "guard", "exports.guard.backend:GuardBackend",
            label="Trained guard classifier (a folder with guard.json)", validate=guard_spec_errors,
        )
