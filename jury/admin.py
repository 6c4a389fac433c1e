"""Django admin for jurors, juries and runs (admins configure the panel here)."""
from __future__ import annotations

from django import forms
from django.contrib import admin

from jury.backends.registry import backend_choices
from jury.models import Juror, Jury, JuryDecision, JuryMember, JuryRun, ModelSpec


class ModelSpecForm(forms.ModelForm):
    """The backend is one of the registered kinds (the fake one only with DEBUG or in tests)."""

    backend = forms.ChoiceField(choices=backend_choices)
    endpoint = forms.URLField(required=False, max_length=500, assume_scheme="http",
                              help_text="openai backend: base URL, e.g. http://host:8000/v1")

    class Meta:
        model = ModelSpec
        fields = "__all__"  # noqa: DJ007 - the admin edits every field of a spec


@admin.register(ModelSpec)
class ModelSpecAdmin(admin.ModelAdmin):
    form = ModelSpecForm
    list_display = ["name", "backend", "model", "dtype", "device", "batch_size", "max_length"]
    list_filter = ["backend"]
    search_fields = ["name", "model"]


@admin.register(Juror)
class JurorAdmin(admin.ModelAdmin):
    list_display = ["name", "model_spec", "prompt_version", "enabled"]
    list_filter = ["enabled", "prompt_version", "model_spec__backend"]
    list_select_related = ["model_spec"]
    search_fields = ["name", "model_spec__name", "model_spec__model"]
    autocomplete_fields = ["model_spec"]


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
