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
        from jury.services.finalize import register_after_run_hook

        register_backend(
            "guard", "exports.guard.backend:GuardBackend",
            label="Trained guard classifier (a folder with guard.json)", validate=guard_spec_errors,
        )
        # Close the loop: after a jury run that seated a guard, raise the items it is unsure of or
        # disagrees with people on (by dotted path: jury imports nothing of exports).
        register_after_run_hook("exports.guard.services:guard_run_review")
