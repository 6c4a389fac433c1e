"""``python manage.py create_project SLUG --name NAME --taxonomy TAXONOMY [--taxonomy-version N] [--mode MODE]
[--overlap N] [--principles SLUG] [--user USERNAME] [--description TEXT]``.

Creates a project the way the admin page does (``annotation.services.project_create``), so a
researcher does not need the Django shell. The taxonomy version defaults to the newest published
one; ``load_presets`` installs the bundled taxonomies first.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.models import PrincipleSet, Project, TaxonomyVersion
from annotation.services import project_create


class Command(BaseCommand):
    help = "Create an annotation project under a published taxonomy version."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="the project's slug (letters, digits, - and _), used by import_items and export_dataset")
        parser.add_argument("--name", required=True, help="the project's display name")
        parser.add_argument("--taxonomy", required=True, help="taxonomy slug (see load_presets), e.g. aegis-2")
        parser.add_argument("--taxonomy-version", type=int, dest="version", help="taxonomy version number (default: the newest published one)")
        parser.add_argument("--mode", choices=Project.Mode.values, default=Project.Mode.RANKING_SAFETY,
                            help="what annotators do (default ranking_safety)")
        parser.add_argument("--overlap", type=int, default=1, help="how many annotators judge each item (default 1)")
        parser.add_argument("--principles", help="principle set slug annotators and jurors cite (optional)")
        parser.add_argument("--user", help="username recorded as the creator (a researcher becomes a member)")
        parser.add_argument("--description", default="", help="a short description shown on the project page")

    def handle(self, *args, slug: str, name: str, taxonomy: str, version: int | None, mode: str, overlap: int,
               principles: str | None, user: str | None, description: str, **options) -> None:
        versions = TaxonomyVersion.objects.filter(taxonomy__slug=taxonomy, status=TaxonomyVersion.Status.PUBLISHED)
        if version is not None:
            versions = versions.filter(version=version)
        taxonomy_version = versions.select_related("taxonomy").order_by("-version").first()
        if taxonomy_version is None:
            known = sorted(set(TaxonomyVersion.objects.filter(status=TaxonomyVersion.Status.PUBLISHED)
                               .values_list("taxonomy__slug", flat=True)))
            raise CommandError(
                f"No published version{'' if version is None else f' {version}'} of taxonomy {taxonomy!r}; "
                f"published taxonomies: {', '.join(known) or 'none (run load_presets)'}."
            )
        principle_set = None
        if principles:
            principle_set = PrincipleSet.objects.filter(slug=principles).first()
            if principle_set is None:
                raise CommandError(f"No principle set with slug {principles!r}.")
        created_by = None
        if user:
            created_by = get_user_model().objects.filter(username=user).first()
            if created_by is None:
                raise CommandError(f"No user {user!r}.")
        if Project.objects.filter(slug=slug).exists():
            raise CommandError(f"A project with slug {slug!r} exists already.")
        try:
            project = project_create(
                slug=slug, name=name, taxonomy_version=taxonomy_version, mode=mode, overlap=overlap,
                principle_set=principle_set, description=description, created_by=created_by,
            )
        except (ValidationError, ValueError) as exc:
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            raise CommandError("; ".join(messages)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Project {project.slug!r} created ({project.get_mode_display()}, {taxonomy_version}); "
            f"import items with: manage.py import_items FILE --project {project.slug}"
        ))
