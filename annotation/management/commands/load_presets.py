from django.core.management.base import BaseCommand

from annotation import services


class Command(BaseCommand):
    help = "Create the role groups and load the taxonomy presets and the default principle set (idempotent)."

    def handle(self, *args, **options) -> None:
        services.roles_ensure_groups()
        for version in services.taxonomy_load_presets():
            self.stdout.write(f"taxonomy {version} ({version.categories.count()} categories)")
        from annotation.models import CategoryMapping

        self.stdout.write(f"crosswalk: {CategoryMapping.objects.count()} category mappings (edit them in admin)")
        pset = services.principle_set_load_default()
        self.stdout.write(f"principle set {pset.slug} ({pset.principles.count()} principles)")
