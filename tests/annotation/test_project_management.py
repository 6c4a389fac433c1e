"""Projects and members managed in the browser (issue 13, point 13): who may, what is stored, and the
project page linking every research page."""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Annotation, Membership, Project
from tests.annotation.web_fixtures import add_human_annotation, import_records, sample_records

pytestmark = pytest.mark.django_db

PERSONAS = ["admin", "researcher", "annotator", "outsider", "anonymous"]


def _form(presets, **extra):
    return {
        "name": "Red team <b>Q4</b>", "slug": "red-team-q4", "mode": "pairwise", "overlap": 3,
        "taxonomy_version": presets["taxonomies"]["aegis-2.0"].pk, "principle_set": presets["principles"].pk,
        "guidelines": "# Rules\n\n- compare", "description": "", **extra,
    }


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_site_researchers_and_admins_create_projects(login, presets, researcher, persona):
    client = login(persona)
    page = client.get(reverse("project-new"))
    created = client.post(reverse("project-new"), _form(presets))
    if persona == "anonymous":
        assert page.status_code == 302 and created.status_code == 302 and not Project.objects.filter(slug="red-team-q4").exists()
    elif persona in ("admin", "researcher"):
        assert page.status_code == 200
        assert created.status_code == 302 and created["Location"] == reverse("project-members", args=["red-team-q4"])
        project = Project.objects.get(slug="red-team-q4")
        assert (project.mode, project.overlap, project.name) == ("pairwise", 3, "Red team <b>Q4</b>")
        # the researcher who made it manages it; an admin needs no membership
        roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
        assert roles == ({researcher.username: "researcher"} if persona == "researcher" else {})
    else:
        assert page.status_code == 404 and created.status_code == 404
        assert not Project.objects.filter(slug="red-team-q4").exists()


def test_project_form_reports_errors_and_creates_nothing(login, presets, project):
    client = login("researcher")
    taken = client.post(reverse("project-new"), _form(presets, slug=project.slug))
    reserved = client.post(reverse("project-new"), _form(presets, slug="new"))
    bad = client.post(reverse("project-new"), _form(presets, slug="red", overlap=0))
    assert taken.status_code == reserved.status_code == bad.status_code == 400
    assert "exists already" in taken.content.decode() and "taken by the new-project page" in reserved.content.decode()
    assert Project.objects.count() == 1


@pytest.mark.parametrize("persona", PERSONAS)
def test_members_page_is_for_the_projects_researchers_and_admins(login, project, persona):
    response = login(persona).get(reverse("project-members", args=[project.slug]))
    expected = {"admin": 200, "researcher": 200, "annotator": 404, "outsider": 404, "anonymous": 302}[persona]
    assert response.status_code == expected


def test_add_change_and_remove_a_member_keeps_their_judgments(login, project, outsider, annotator, researcher, tmp_path):

    client = login("researcher")
    # add by login name
    response = client.post(reverse("project-members", args=[project.slug]), {"username": outsider.username, "role": "annotator"})
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user=outsider).role == "annotator"
    # an unknown name is a form error, nothing stored
    unknown = client.post(reverse("project-members", args=[project.slug]), {"username": "nobody", "role": "annotator"})
    assert unknown.status_code == 400 and "No active user is called" in unknown.content.decode()
    # change a role
    client.post(reverse("project-member-update", args=[project.slug, outsider.pk]), {"role": "researcher"})
    assert Membership.objects.get(project=project, user=outsider).role == "researcher"
    # remove someone who has judged: the judgment stays, the access goes
    import_records(project, tmp_path, sample_records(1), user=researcher)
    judged = add_human_annotation(item=project.items.first(), annotator=annotator)
    client.post(reverse("project-member-update", args=[project.slug, annotator.pk]), {"action": "remove"})
    assert not Membership.objects.filter(project=project, user=annotator).exists()
    assert Annotation.objects.filter(pk=judged.pk).exists()
    assert login("annotator").get(reverse("project", args=[project.slug])).status_code == 404


def test_nobody_changes_their_own_membership_here(login, project, researcher):
    client = login("researcher")
    client.post(reverse("project-member-update", args=[project.slug, researcher.pk]), {"action": "remove"})
    client.post(reverse("project-members", args=[project.slug]), {"username": researcher.username, "role": "annotator"})
    assert Membership.objects.get(project=project, user=researcher).role == "researcher"


def test_annotators_cannot_post_member_changes(login, project, annotator, outsider):
    client = login("annotator")
    assert client.post(reverse("project-members", args=[project.slug]), {"username": outsider.username, "role": "researcher"}).status_code == 404
    assert client.post(reverse("project-member-update", args=[project.slug, annotator.pk]), {"role": "researcher"}).status_code == 404
    assert Membership.objects.get(project=project, user=annotator).role == "annotator"


def test_project_page_links_every_research_page_for_managers_only(login, project):
    pages = ["import-upload", "adjudication", "flags", "jury-runs", "exports", "guards", "project-metrics", "project-members"]
    html = login("researcher").get(reverse("project", args=[project.slug])).content.decode()
    for name in pages:
        assert f'href="{reverse(name, args=[project.slug])}"' in html, name
    annotator_html = login("annotator").get(reverse("project", args=[project.slug])).content.decode()
    assert not any(f'href="{reverse(name, args=[project.slug])}"' in annotator_html for name in pages)


def test_member_names_are_escaped(login, project, django_user_model):
    from annotation.models import Membership as M

    evil = django_user_model.objects.create_user(username="<img src=x onerror=alert(1)>", password="x")
    M.objects.create(project=project, user=evil, role="annotator")
    html = login("researcher").get(reverse("project-members", args=[project.slug])).content.decode()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
