"""Django admin for the core models.

Who gets in: Django admin itself lets in only ``is_staff`` users, and ``services.user_set_role``
keeps ``is_staff`` equal to "has the admin role". Inside, every model admin here asks
``roles.is_admin`` rather than Django's per-model permissions, so the ``admin`` group needs no
permission rows and a stray ``is_staff`` flag on a non-admin opens nothing.

Records the platform promises never to change are read-only here too: published taxonomy
versions (and their categories), import batches, items as imported, and annotations (append-only:
no add, change or delete for anyone).
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models import Count
from django.http import HttpRequest
from django.template.response import TemplateResponse

from annotation import roles, selectors, services
from annotation.models import (
    Annotation,
    CategoryMapping,
    HazardCategory,
    ImmutableError,
    ImportBatch,
    Item,
    Membership,
    Principle,
    PrincipleSet,
    Project,
    Response,
    ResponseSafety,
    Taxonomy,
    TaxonomyVersion,
)


class AdminRoleMixin:
    """Every permission check of a model admin goes to ``roles.is_admin``."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return roles.is_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return roles.is_admin(request.user)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return roles.is_admin(request.user)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return roles.is_admin(request.user)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return roles.is_admin(request.user)


class ReadOnlyMixin(AdminRoleMixin):
    """Viewable by admins, changeable by nobody."""

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# --- Taxonomies ---------------------------------------------------------------------------------


class TaxonomyVersionInline(ReadOnlyMixin, admin.TabularInline):
    model = TaxonomyVersion
    fields = ("version", "status", "published_at", "notes", "based_on")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    ordering = ("-version",)


@admin.action(description="Create a new draft version (copy of the newest)")
def action_new_draft_from_taxonomy(modeladmin, request, queryset):
    for taxonomy in queryset:
        draft = services.taxonomy_version_new_draft(taxonomy=taxonomy)
        modeladmin.message_user(request, f"{draft} is the draft to edit.", messages.SUCCESS)


@admin.register(Taxonomy)
class TaxonomyAdmin(AdminRoleMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "source", "version_count", "created_at")
    search_fields = ("name", "slug", "description", "source")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [TaxonomyVersionInline]
    actions = [action_new_draft_from_taxonomy]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_versions=Count("versions"))

    @admin.display(description="versions", ordering="_versions")
    def version_count(self, obj) -> int:
        return obj._versions

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # versions are PROTECTed and carry labels: a taxonomy is never deleted


class AliasesField(forms.CharField):
    """Aliases typed as a comma-separated list ("Hate, Identity Hate") and stored as a JSON list."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        seen: list[str] = []
        for part in text.split(","):
            alias = " ".join(part.split())
            if alias and alias.casefold() not in {s.casefold() for s in seen}:
                seen.append(alias)
        return seen


class HazardCategoryForm(forms.ModelForm):
    aliases = AliasesField(
        required=False,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text="Other spellings that map to this category, separated by commas.",
    )

    class Meta:
        model = HazardCategory
        fields = ("order", "code", "name", "group", "description", "aliases")
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2, "cols": 40}),
            "code": forms.TextInput(attrs={"size": 8}),
        }


class HazardCategoryInline(AdminRoleMixin, admin.StackedInline):
    """One stacked block per category: at 1,440 px the tabular editor was 2,313 px wide."""

    model = HazardCategory
    form = HazardCategoryForm
    fieldsets = ((None, {"fields": (("order", "code"), "group", "name", "description", "aliases")}),)
    extra = 0

    def _editable(self, obj) -> bool:
        return obj is None or not obj.is_published

    def has_add_permission(self, request, obj=None) -> bool:
        return super().has_add_permission(request, obj) and self._editable(obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and self._editable(obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self._editable(obj)


@admin.action(description="Create a new draft version of these taxonomies")
def action_new_draft(modeladmin, request, queryset):
    taxonomies = {v.taxonomy_id: v.taxonomy for v in queryset.select_related("taxonomy")}
    for taxonomy in taxonomies.values():
        draft = services.taxonomy_version_new_draft(taxonomy=taxonomy)
        modeladmin.message_user(request, f"{draft} is the draft to edit.", messages.SUCCESS)


@admin.action(description="Publish the selected drafts (they become immutable)…")
def action_publish(modeladmin, request, queryset):
    """Two steps, as Django's own delete action: first a page with each draft's differences from the
    version it replaces, then, on "Yes, publish", the publication."""
    versions = list(queryset.select_related("taxonomy", "based_on__taxonomy"))
    if request.POST.get("confirm") != "yes":
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": "Publish taxonomy versions?",
            "opts": modeladmin.model._meta,
            "diffs": [(version, selectors.taxonomy_version_diff(version=version)) for version in versions],
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "action_publish",
        }
        return TemplateResponse(request, "admin/annotation/taxonomyversion/publish_confirm.html", context)
    for version in versions:
        try:
            services.taxonomy_version_publish(version=version)
        except (ImmutableError, ValueError) as exc:
            modeladmin.message_user(request, f"{version}: {exc}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{version} published.", messages.SUCCESS)
    return None


@admin.register(TaxonomyVersion)
class TaxonomyVersionAdmin(AdminRoleMixin, admin.ModelAdmin):
    list_display = ("__str__", "taxonomy", "version", "status", "category_count", "published_at", "created_at")
    list_filter = ("status", "taxonomy")
    search_fields = ("taxonomy__name", "taxonomy__slug", "notes")
    list_select_related = ("taxonomy",)
    fields = ("taxonomy", "version", "status", "notes", "based_on", "created_at", "published_at")
    readonly_fields = ("taxonomy", "version", "status", "based_on", "created_at", "published_at")
    inlines = [HazardCategoryInline]
    actions = [action_new_draft, action_publish]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_categories=Count("categories"))

    @admin.display(description="categories", ordering="_categories")
    def category_count(self, obj) -> int:
        return obj._categories

    def has_add_permission(self, request, *args) -> bool:
        # Versions are numbered by the service: use the "create a new draft version" action.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or not obj.is_published)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or not obj.is_published)


@admin.register(HazardCategory)
class HazardCategoryAdmin(AdminRoleMixin, admin.ModelAdmin):
    form = HazardCategoryForm
    list_display = ("code", "name", "group", "version", "order")
    list_filter = ("group", "version__taxonomy", "version__status")
    search_fields = ("code", "name", "description", "version__taxonomy__name")
    list_select_related = ("version__taxonomy",)
    ordering = ("version__taxonomy__name", "-version__version", "order")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "version":  # categories are added to drafts only
            kwargs["queryset"] = TaxonomyVersion.objects.filter(status=TaxonomyVersion.Status.DRAFT)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _editable(self, obj) -> bool:
        return obj is None or not obj.version.is_published

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and self._editable(obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self._editable(obj)


# --- Taxonomy crosswalk ------------------------------------------------------------------------


class _TaxonomyEndFilter(admin.SimpleListFilter):
    end = "source"

    def lookups(self, request, model_admin):
        return [(t.slug, t.name) for t in Taxonomy.objects.order_by("name")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"{self.end}__version__taxonomy__slug": self.value()})
        return queryset


class SourceTaxonomyFilter(_TaxonomyEndFilter):
    title = "source taxonomy"
    parameter_name = "source_taxonomy"
    end = "source"


class TargetTaxonomyFilter(_TaxonomyEndFilter):
    title = "target taxonomy"
    parameter_name = "target_taxonomy"
    end = "target"


@admin.register(CategoryMapping)
class CategoryMappingAdmin(AdminRoleMixin, admin.ModelAdmin):
    """The crosswalk between taxonomies: editable data (the preset seed never overwrites it)."""

    list_display = ("source_label", "relation", "target_label", "judgment_call", "note")
    list_filter = (SourceTaxonomyFilter, TargetTaxonomyFilter, "judgment_call", "relation")
    list_editable = ("relation", "judgment_call")
    search_fields = ("source__code", "source__name", "target__code", "target__name", "note")
    list_select_related = ("source__version__taxonomy", "target__version__taxonomy")
    autocomplete_fields = ("source", "target")
    fields = ("source", "source_taxonomy", "target", "target_taxonomy", "relation", "judgment_call", "note")
    readonly_fields = ("source_taxonomy", "target_taxonomy")

    @admin.display(description="source taxonomy")
    def source_taxonomy(self, obj) -> str:
        return "—" if obj is None or obj.source_id is None else str(obj.source.version)

    @admin.display(description="target taxonomy")
    def target_taxonomy(self, obj) -> str:
        return "—" if obj is None or obj.target_id is None else str(obj.target.version)

    @admin.display(description="source", ordering="source__code")
    def source_label(self, obj) -> str:
        return f"{obj.source.version.taxonomy.name} v{obj.source.version.version}: {obj.source}"

    @admin.display(description="target", ordering="target__code")
    def target_label(self, obj) -> str:
        return f"{obj.target.version.taxonomy.name} v{obj.target.version.version}: {obj.target}"


# --- Principles ---------------------------------------------------------------------------------


class PrincipleInline(AdminRoleMixin, admin.TabularInline):
    model = Principle
    fields = ("order", "code", "short", "group", "text")
    extra = 0


@admin.register(PrincipleSet)
class PrincipleSetAdmin(AdminRoleMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "principle_count", "created_at")
    search_fields = ("name", "slug", "description", "principles__short", "principles__code")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [PrincipleInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_principles=Count("principles"))

    @admin.display(description="principles", ordering="_principles")
    def principle_count(self, obj) -> int:
        return obj._principles


@admin.register(Principle)
class PrincipleAdmin(AdminRoleMixin, admin.ModelAdmin):
    list_display = ("code", "short", "group", "principle_set", "order")
    list_filter = ("group", "principle_set")
    search_fields = ("code", "short", "text")
    list_select_related = ("principle_set",)


# --- Projects -----------------------------------------------------------------------------------


class MembershipInline(AdminRoleMixin, admin.TabularInline):
    model = Membership
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)
    extra = 1


@admin.register(Project)
class ProjectAdmin(AdminRoleMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "mode", "overlap", "taxonomy_version", "member_count", "item_count", "created_at")
    list_filter = ("mode", "taxonomy_version__taxonomy")
    search_fields = ("name", "slug", "description")
    list_select_related = ("taxonomy_version__taxonomy",)
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]
    readonly_fields = ("created_by", "created_at")

    def get_queryset(self, request):
        return (
            super().get_queryset(request)
            .annotate(_members=Count("memberships", distinct=True), _items=Count("items", distinct=True))
        )

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj) -> int:
        return obj._members

    @admin.display(description="items", ordering="_items")
    def item_count(self, obj) -> int:
        return obj._items

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "taxonomy_version":  # projects label under published versions only
            kwargs["queryset"] = TaxonomyVersion.objects.filter(
                status=TaxonomyVersion.Status.PUBLISHED
            ).select_related("taxonomy")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Membership)
class MembershipAdmin(AdminRoleMixin, admin.ModelAdmin):
    list_display = ("user", "project", "role", "created_at")
    list_filter = ("role", "project")
    search_fields = ("user__username", "user__email", "project__name", "project__slug")
    list_select_related = ("user", "project")
    autocomplete_fields = ("user",)


# --- Imports, items, annotations (read-only) ----------------------------------------------------


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id", "project", "source_name", "detected_format", "status", "items_created", "items_skipped",
        "error_count", "created_by", "created_at",
    )
    list_filter = ("status", "detected_format", "background", "project")
    search_fields = ("source_name", "sha256", "project__slug")
    list_select_related = ("project", "created_by")
    date_hierarchy = "created_at"


class ResponseInline(ReadOnlyMixin, admin.StackedInline):
    model = Response
    fields = ("position", "model_name", "origin", "text", "metadata")
    readonly_fields = fields
    extra = 0


@admin.register(Item)
class ItemAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "external_id", "project", "priority", "is_gold", "import_batch", "created_at")
    list_filter = ("project", "is_gold")
    search_fields = ("=id", "external_id", "content_hash")
    list_select_related = ("project",)
    inlines = [ResponseInline]


class ResponseSafetyInline(ReadOnlyMixin, admin.TabularInline):
    model = ResponseSafety
    fields = ("response", "label", "categories")
    readonly_fields = fields
    extra = 0


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Append-only: nobody may add, change or delete an annotation here (corrections are new
    records made through the services, pointing at the old one with ``supersedes``)."""

    list_display = ("id", "project", "item", "source", "annotator", "source_detail", "prompt_label", "created_at")
    list_filter = ("source", "prompt_label", "project")
    search_fields = ("=id", "item__external_id", "annotator__username", "source_detail", "rationale")
    list_select_related = ("project", "item", "annotator")
    date_hierarchy = "created_at"
    inlines = [ResponseSafetyInline]


# --- Users and groups ---------------------------------------------------------------------------

User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


def _role_action(role: str):
    @admin.action(description=f"Make the selected users {role}s (sets group and staff flag)")
    def action(modeladmin, request, queryset):
        for user in queryset:
            services.user_set_role(user=user, role=role)
        modeladmin.message_user(request, f"{queryset.count()} user(s) are now {role}s.", messages.SUCCESS)

    action.__name__ = f"make_{role}"
    return action


@admin.register(User)
class UserAdmin(AdminRoleMixin, DjangoUserAdmin):
    list_display = ("username", "email", "role_groups", "is_staff", "is_active", "last_login", "date_joined")
    list_filter = ("groups", "is_staff", "is_superuser", "is_active")
    actions = [_role_action(r) for r in roles.GROUPS]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="groups")
    def role_groups(self, obj) -> str:
        return ", ".join(sorted(g.name for g in obj.groups.all())) or "—"

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # Keep Django admin access equal to the admin role, whatever the form said about is_staff.
        services.user_sync_staff(user=form.instance)


@admin.register(Group)
class GroupAdmin(AdminRoleMixin, DjangoGroupAdmin):
    pass
