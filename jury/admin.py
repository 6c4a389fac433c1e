"""Django admin for jurors, juries and runs (admins configure the panel here)."""
from __future__ import annotations

from django.contrib import admin

from jury.models import Juror, Jury, JuryDecision, JuryMember, JuryRun


@admin.register(Juror)
class JurorAdmin(admin.ModelAdmin):
    list_display = ["name", "backend", "model", "prompt_version", "device", "batch_size", "max_length", "enabled"]
    list_filter = ["backend", "enabled", "prompt_version"]
    search_fields = ["name", "model"]


class JuryMemberInline(admin.TabularInline):
    model = JuryMember
    extra = 1
    autocomplete_fields = ["juror"]


@admin.register(Jury)
class JuryAdmin(admin.ModelAdmin):
    list_display = ["name", "rule", "threshold", "min_confidence", "escalate_on_split", "chunk_size"]
    inlines = [JuryMemberInline]
    search_fields = ["name"]


@admin.register(JuryRun)
class JuryRunAdmin(admin.ModelAdmin):
    """Runs are created by researchers (page, API, run_jury); the admin only shows them."""

    list_display = ["id", "project", "jury", "task", "status", "item_count", "decisions_count", "escalated_count",
                    "error_count", "created_at"]
    list_filter = ["status", "task", "jury"]
    list_select_related = ["project", "jury"]
    readonly_fields = [f.name for f in JuryRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(JuryDecision)
class JuryDecisionAdmin(admin.ModelAdmin):
    list_display = ["id", "run", "item", "task", "rule", "label", "confidence", "escalated"]
    list_filter = ["task", "escalated", "rule"]
    readonly_fields = [f.name for f in JuryDecision._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
