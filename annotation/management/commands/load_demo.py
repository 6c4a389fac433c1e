"""Load the demo: presets, demo users, the ``demo`` project and the items shipped in ``annotation/demo/``.

Idempotent, so ``make run`` calls it on every start:
- users ``admin`` / ``researcher`` / ``annotator`` are created once with random passwords, which are
  printed once, when they are created (they are stored only as hashes); later runs say the users
  exist and how to reset a password (``manage.py changepassword NAME``);
- the project ``demo`` (mode ranking + safety, overlap 2, Aegis 2.0 taxonomy, default principle set)
  is created once; researcher and annotator are made members;
- each ``annotation/demo/*.jsonl`` file is imported through the ``import_items`` command unless an
  import of that file into the project already finished;
- one more project per remaining mode, so every mode can be tried as it is meant: ``demo-pairwise``
  (the two-response items, compared with a strength), ``demo-safety`` (the safety items, labels
  only) and ``demo-ranking`` (the ranking items, ranks only), each with the same members and
  guidelines (which say what each demo project asks).
"""
from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation import roles, services
from annotation.models import ImportBatch, Membership, Project, TaxonomyVersion

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_PROJECT_SLUG = "demo"
# One project per other mode: (slug, name, mode, the demo_kind of the items it gets).
DEMO_MODE_PROJECTS: tuple[tuple[str, str, str, str], ...] = (
    ("demo-pairwise", "Demo · pairwise", Project.Mode.PAIRWISE, "pairwise"),
    ("demo-safety", "Demo · safety", Project.Mode.SAFETY, "safety"),
    ("demo-ranking", "Demo · ranking", Project.Mode.RANKING, "ranking"),
)
DEMO_TAXONOMY_SLUG = "aegis-2.0"
# (username, site-wide group, Django staff/superuser?, project role or None)
DEMO_USERS: tuple[tuple[str, str, bool, str | None], ...] = (
    ("admin", roles.ADMIN, True, None),
    ("researcher", roles.RESEARCHER, False, Membership.Role.RESEARCHER),
    ("annotator", roles.ANNOTATOR, False, Membership.Role.ANNOTATOR),
)


@transaction.atomic
def demo_users_ensure() -> list[tuple[AbstractUser, str | None]]:
    """Create the demo users that are missing. Returns ``(user, password)`` pairs; ``password`` is
    ``None`` for users that already existed (their password is never touched)."""
    User = get_user_model()
    result: list[tuple[AbstractUser, str | None]] = []
    for username, group, staff, _ in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        password: str | None = None
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(
                username=username, password=password, is_staff=staff, is_superuser=staff
            )
        user.groups.add(Group.objects.get(name=group))
        result.append((user, password))
    return result


@transaction.atomic
def demo_project_ensure(
    *, researcher, annotator, slug: str = DEMO_PROJECT_SLUG, name: str = "Demo",
    mode: str = Project.Mode.RANKING_SAFETY,
) -> tuple[Project, bool]:
    """The demo project ``slug``, created if missing; the demo researcher and annotator are members."""
    project = Project.objects.filter(slug=slug).first()
    created = project is None
    if project is None:
        version = (
            TaxonomyVersion.objects.filter(
                taxonomy__slug=DEMO_TAXONOMY_SLUG, status=TaxonomyVersion.Status.PUBLISHED
            )
            .order_by("-version")
            .first()
        )
        if version is None:
            raise CommandError(f"taxonomy {DEMO_TAXONOMY_SLUG!r} is not loaded; run `manage.py load_presets`.")
        project = services.project_create(
            slug=slug,
            name=name,
            description=(
                "A small demo project shipped with Tribunal: ranking, pairwise and safety items, all ranked "
                "and labelled." if slug == DEMO_PROJECT_SLUG else f"The demo's {mode.replace('_', ' ')} items, "
                f"in a project of mode {mode.replace('_', ' ')}."
            ),
            guidelines=(DEMO_DIR / "guidelines.md").read_text(encoding="utf-8"),
            taxonomy_version=version,
            principle_set=services.principle_set_load_default(),
            mode=mode,
            overlap=2,
            created_by=researcher,
        )
    services.membership_set(project=project, user=researcher, role=Membership.Role.RESEARCHER)
    services.membership_set(project=project, user=annotator, role=Membership.Role.ANNOTATOR)
    return project, created


class Command(BaseCommand):
    help = "Load the demo users, the demo project and its items (idempotent; passwords printed once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-items", action="store_true", help="Create users and project only.")

    def handle(self, *args, **options) -> None:
        services.roles_ensure_groups()
        services.taxonomy_load_presets()
        services.principle_set_load_default()

        users = demo_users_ensure()
        # Print the passwords before anything else can fail: they exist nowhere else.
        new = [(u, p) for u, p in users if p is not None]
        if new:
            self.stdout.write(self.style.WARNING("Demo users created. Passwords are shown only this once:"))
            for user, password in new:
                self.stdout.write(f"  {user.username:<11} {password}")
        existing = [u.username for u, p in users if p is None]
        if existing:
            # Name the key file in the hint when make run set one, so the command can be pasted as is.
            key_file = os.environ.get("SECRET_KEY_FILE")
            prefix = f"SECRET_KEY_FILE={key_file} " if key_file else ""
            self.stdout.write(
                f"Demo users exist: {', '.join(existing)} (passwords unchanged; "
                f"reset one with `{prefix}python manage.py changepassword NAME`)."
            )

        by_name = {u.username: u for u, _ in users}
        project, created = demo_project_ensure(researcher=by_name["researcher"], annotator=by_name["annotator"])
        self.stdout.write(f"project {project.slug!r} {'created' if created else 'exists'} "
                          f"(mode {project.mode}, overlap {project.overlap}, {project.taxonomy_version})")

        if not options["no_items"]:
            self._import_items(project)
        for slug, name, mode, kind in DEMO_MODE_PROJECTS:
            other, made = demo_project_ensure(
                researcher=by_name["researcher"], annotator=by_name["annotator"], slug=slug, name=name, mode=mode
            )
            self.stdout.write(f"project {other.slug!r} {'created' if made else 'exists'} (mode {other.mode})")
            if not options["no_items"]:
                self._import_kind(other, kind)

    def _import_items(self, project: Project) -> None:
        files = sorted(DEMO_DIR.glob("*.jsonl"))
        if not files:
            raise CommandError(f"no demo files in {DEMO_DIR}")
        for path in files:
            done = project.imports.filter(
                status=ImportBatch.Status.DONE, source_name__endswith=path.name
            ).exists()
            if done:
                self.stdout.write(f"demo file {path.name} already imported")
                continue
            # Through the command users run, so the demo exercises the real import path.
            call_command(
                "import_items", str(path), "--project", project.slug, "--format", "tribunal",
                stdout=self.stdout._out, stderr=self.stderr._out,
            )
        self.stdout.write(f"project {project.slug!r} has {project.items.count()} items")

    def _import_kind(self, project: Project, kind: str) -> None:
        """The demo items of one ``demo_kind`` into ``project``, through the same import command (from
        a file named ``<kind>.jsonl`` holding those lines, so a later run sees it was done)."""
        name = f"{kind}.jsonl"
        if project.imports.filter(status=ImportBatch.Status.DONE, source_name__endswith=name).exists():
            self.stdout.write(f"demo file {name} already imported into {project.slug!r}")
            return
        lines = [
            line for path in sorted(DEMO_DIR.glob("*.jsonl")) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("metadata", {}).get("demo_kind") == kind
        ]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            call_command(
                "import_items", str(path), "--project", project.slug, "--format", "tribunal",
                stdout=self.stdout._out, stderr=self.stderr._out,
            )
        self.stdout.write(f"project {project.slug!r} has {project.items.count()} items")
