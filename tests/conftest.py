"""Shared fixtures. State is built through services, as users would build it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from annotation import services
from annotation.models import Membership

SHARED_DATA = Path(os.environ.get("TRIBUNAL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_data(relative: str) -> Path:
    """A file from ../shared/data, or skip the test with a clear reason when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data set not available: {path} (../shared/data is beside the project in CI)")
    return path


@pytest.fixture
def presets(db):
    services.roles_ensure_groups()
    versions = {v.taxonomy.slug: v for v in services.taxonomy_load_presets()}
    principles = services.principle_set_load_default()
    return {"taxonomies": versions, "principles": principles}


def _user(username: str, group: str | None, **extra):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def admin_user(presets):
    return _user("alice_admin", "admin", is_staff=True)


@pytest.fixture
def researcher(presets):
    return _user("rita_researcher", "researcher")


@pytest.fixture
def annotator(presets):
    return _user("bob_annotator", "annotator")


@pytest.fixture
def outsider(presets):
    """An annotator who is not a member of ``project``."""
    return _user("charlie_outsider", "annotator")


@pytest.fixture
def project(presets, researcher, annotator):
    project = services.project_create(
        slug="demo",
        name="Demo",
        taxonomy_version=presets["taxonomies"]["aegis-2.0"],
        principle_set=presets["principles"],
        overlap=2,
        created_by=researcher,
    )
    services.membership_set(project=project, user=annotator, role=Membership.Role.ANNOTATOR)
    return project


@pytest.fixture
def other_project(presets, admin_user):
    return services.project_create(
        slug="other",
        name="Other",
        taxonomy_version=presets["taxonomies"]["llama-guard-3"],
        created_by=admin_user,
    )
