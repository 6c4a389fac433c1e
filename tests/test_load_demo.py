"""`manage.py load_demo`: the demo users, project and items that `make run` loads on every start."""
from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from annotation import roles
from annotation.management.commands.load_demo import DEMO_DIR
from annotation.models import Item, Membership, Project, Response

pytestmark = pytest.mark.django_db


def run_load_demo() -> str:
    out = io.StringIO()
    call_command("load_demo", stdout=out, stderr=out)
    return out.getvalue()


def printed_passwords(output: str) -> dict[str, str]:
    return dict(re.findall(r"^  (admin|researcher|annotator)\s+(\S+)$", output, flags=re.M))


def demo_lines() -> list[dict]:
    return [json.loads(line) for path in sorted(DEMO_DIR.glob("*.jsonl")) for line in path.read_text().splitlines()]


def test_the_shipped_demo_data_is_small_and_covers_every_kind():
    # given the files in annotation/demo/
    rows = demo_lines()

    # then
    assert 15 <= len(rows) <= 30
    assert all(2 <= len(r["responses"]) <= 4 for r in rows)
    kinds = {r["metadata"]["demo_kind"] for r in rows}
    assert kinds == {"ranking", "pairwise", "safety"}
    assert any("<script>alert(1)</script>" in json.dumps(r) for r in rows)
    assert (DEMO_DIR / "guidelines.md").read_text().startswith("# ")


def test_it_creates_users_with_printed_passwords_the_project_and_its_items():
    # when
    output = run_load_demo()

    # then the three users exist and the printed passwords log them in
    passwords = printed_passwords(output)
    assert set(passwords) == {"admin", "researcher", "annotator"}
    assert len(set(passwords.values())) == 3
    for username, password in passwords.items():
        user = authenticate(username=username, password=password)
        assert user is not None, username
    User = get_user_model()
    admin = User.objects.get(username="admin")
    assert admin.is_staff and roles.is_admin(admin)
    assert roles.is_researcher(User.objects.get(username="researcher"))

    # and the project is set up as documented
    project = Project.objects.get(slug="demo")
    assert project.mode == Project.Mode.RANKING_SAFETY
    assert project.overlap == 2
    assert project.taxonomy_version.taxonomy.slug == "aegis-2.0"
    assert project.principle_set is not None and project.principle_set.slug == "tribunal-hhh"
    assert "annotation guidelines" in project.guidelines
    members = dict(project.memberships.values_list("user__username", "role"))
    assert members == {"researcher": Membership.Role.RESEARCHER, "annotator": Membership.Role.ANNOTATOR}

    # and every demo line became an item with its responses, text stored verbatim (escaping is the
    # templates' job, never the importer's)
    rows = demo_lines()
    assert Item.objects.filter(project=project).count() == len(rows)
    assert Response.objects.filter(item__project=project).count() == sum(len(r["responses"]) for r in rows)
    assert Response.objects.filter(item__project=project, text__contains="<script>alert(1)</script>").exists()


def test_a_second_run_changes_nothing_and_prints_no_passwords():
    # given
    first = printed_passwords(run_load_demo())
    items_before = Item.objects.count()

    # when
    output = run_load_demo()

    # then
    assert printed_passwords(output) == {}
    assert "Demo users exist: admin, researcher, annotator" in output
    assert "changepassword" in output
    assert Item.objects.count() == items_before
    assert Project.objects.filter(slug="demo").count() == 1
    # the first passwords still work: existing users are never touched
    assert authenticate(username="annotator", password=first["annotator"]) is not None


def test_there_is_a_demo_project_per_mode_with_the_items_of_its_kind():
    # when
    run_load_demo()
    output = run_load_demo()  # a second run imports nothing twice

    # then
    rows = demo_lines()
    expected = {"demo-pairwise": ("pairwise", "pairwise"), "demo-safety": ("safety", "safety"),
                "demo-ranking": ("ranking", "ranking")}
    for slug, (mode, kind) in expected.items():
        project = Project.objects.get(slug=slug)
        assert project.mode == mode
        assert Item.objects.filter(project=project).count() == sum(r["metadata"]["demo_kind"] == kind for r in rows)
        members = dict(project.memberships.values_list("user__username", "role"))
        assert members == {"researcher": Membership.Role.RESEARCHER, "annotator": Membership.Role.ANNOTATOR}
        assert f"demo file {kind}.jsonl already imported into '{slug}'" in output
    # every pairwise demo item has exactly two responses (a pair to compare)
    pair_items = Item.objects.filter(project__slug="demo-pairwise")
    assert all(i.responses.count() == 2 for i in pair_items)
    # and the guidelines say what each demo project asks, not pairwise strength in the ranking one
    guidelines = Project.objects.get(slug="demo").guidelines
    assert "this project does not ask how strongly one is better" in guidelines
    assert "With only two responses, say which is better and how strongly" not in guidelines
    assert "Needs Caution" in guidelines and "Categories go with *unsafe* only" in guidelines
