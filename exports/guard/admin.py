"""Admin: guards, their trainings and evaluation jobs, read-mostly (the services own every state change)."""
from __future__ import annotations

from django.contrib import admin

from exports.guard.models import GuardEvaluation, GuardModel, GuardTraining


@admin.register(GuardModel)
class GuardModelAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "taxonomy_version", "recipe", "status", "source", "created_by", "created_at")
    list_filter = ("status", "recipe", "taxonomy_version")
    search_fields = ("name",)
    readonly_fields = [f.name for f in GuardModel._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # guards are registered by training (train_guard, the page, the API)


@admin.register(GuardTraining)
class GuardTrainingAdmin(admin.ModelAdmin):
    list_display = ("id", "guard_model", "status", "phase", "step", "steps_total", "attempts", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in GuardTraining._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(GuardEvaluation)
class GuardEvaluationAdmin(admin.ModelAdmin):
    list_display = ("id", "guard_model", "data_name", "status", "phase", "step", "steps_total", "attempts", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in GuardEvaluation._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
