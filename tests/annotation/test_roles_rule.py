"""annotation.roles.effective_role: the one researcher-membership rule, on literal inputs, and the
three readers that apply it agree."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from annotation import roles, selectors, services
from annotation.models import Membership


@pytest.mark.parametrize(
    ("is_admin", "membership", "holds_researcher", "expected"),
    [
        (True, None, False, "admin"),
        (True, "annotator", False, "admin"),
        (False, "researcher", True, "researcher"),
        (False, "researcher", False, "annotator"),  # a demoted researcher keeps annotating
        (False, "annotator", True, "annotator"),
        (False, None, True, None),
        (False, None, False, None),
    ],
)
def test_effective_role(is_admin, membership, holds_researcher, expected):
    assert roles.effective_role(
        is_admin=is_admin, membership_role=membership, holds_researcher_role=holds_researcher
    ) == expected


@pytest.mark.parametrize(("role", "manages"), [("admin", True), ("researcher", True), ("annotator", False), (None, False)])
def test_role_manages(role, manages):
    assert roles.role_manages(role) is manages


def test_a_researcher_member_without_the_site_role_is_an_annotator_everywhere(project, annotator):
    # given: the annotator is made a researcher member but holds only the annotator group
    services.membership_set(project=project, user=annotator, role=Membership.Role.RESEARCHER)
    # when / then: the project role, the member check and the dashboard agree
    assert roles.project_role(annotator, project) == "annotator"
    assert roles.get_project_for_member(annotator, "demo")[1] == "annotator"
    assert [p.user_role for p in selectors.project_list_for_user(user=annotator)] == ["annotator"]
    # given: once they hold the researcher role site-wide, all three say researcher
    annotator.groups.add(Group.objects.get(name="researcher"))
    del annotator._tribunal_groups  # the per-request group cache
    assert roles.project_role(annotator, project) == "researcher"
    assert roles.get_project_for_member(annotator, "demo")[1] == "researcher"
    assert [p.user_role for p in selectors.project_list_for_user(user=annotator)] == ["researcher"]
