from django.contrib import admin

from jury.edits.models import Edit, EditRun, EditTemplate


@admin.register(EditTemplate)
class EditTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "direction", "created_at")
    list_filter = ("direction",)

    def has_change_permission(self, request, obj=None) -> bool:  # immutable: edit on the edits page
        return False


@admin.register(EditRun)
class EditRunAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "direction", "editor", "status", "processed", "total", "kept_count",
                    "discarded_count", "created_at")
    list_filter = ("status", "direction")
    readonly_fields = [f.name for f in EditRun._meta.fields]


@admin.register(Edit)
class EditAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "status", "discard_reason", "word_distance", "created_at")
    list_filter = ("status", "direction")
    readonly_fields = [f.name for f in Edit._meta.fields]
