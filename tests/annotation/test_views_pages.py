"""Login/logout, dashboard and project page: content, escaping, sanitised guidelines, query counts."""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation import services
from annotation.models import Membership
from tests.annotation.web_fixtures import (  # noqa: F401  (fixtures)
    XSS_IMG,
    XSS_SCRIPT,
    batch,
    import_records,
    item,
    personas,
    sample_records,
)

pytestmark = pytest.mark.django_db


# --- login / logout -----------------------------------------------------------------------------


def test_it_logs_in_and_out(client, annotator):
    # given: an anonymous visitor is sent to the login page
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/"
    page = client.get("/login/?next=/")
    assert page.status_code == 200 and b'name="password"' in page.content
    # when: right password
    response = client.post("/login/", {"username": "bob_annotator", "password": "pw-bob_annotator", "next": "/"})
    # then
    assert response.status_code == 302 and response["Location"] == "/"
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert b"bob_annotator" in dashboard.content and b"role-annotator" in dashboard.content
    # when: logging out takes a POST (a GET cannot log anyone out through a link or an image)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    # then
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get("/").status_code == 302


def test_it_refuses_a_wrong_password(client, annotator):
    # when
    response = client.post("/login/", {"username": "bob_annotator", "password": "wrong"})
    # then
    assert response.status_code == 200
    assert b"enter a correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_the_page_shell_has_csrf_for_htmx_and_no_cdn(client, annotator):
    # given
    client.force_login(annotator)
    # when
    html = client.get("/").content.decode()
    # then
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert "/static/vendor/htmx-2.0.11.min.js" in html
    assert "https://" not in html and "http://" not in html  # nothing loaded from elsewhere
    assert 'action="/logout/"' in html and 'method="post"' in html


def test_swagger_ui_is_served_offline(client, annotator):
    # given
    client.force_login(annotator)
    # when
    html = client.get("/api/docs/").content.decode()
    # then: the UI assets come from our static files (drf-spectacular-sidecar), not a CDN
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


# --- dashboard ----------------------------------------------------------------------------------


def test_dashboard_lists_only_the_users_projects_with_role_and_counts(client, annotator, project, other_project, batch):
    # given
    client.force_login(annotator)
    # when
    response = client.get("/")
    # then
    projects = response.context["projects"]
    assert [p.slug for p in projects] == ["demo"]
    assert projects[0].item_count == 3 and projects[0].user_role == "annotator"
    assert b"/projects/demo/" in response.content and b"/projects/other/" not in response.content


def test_dashboard_shows_admins_every_project(client, admin_user, project, other_project):
    client.force_login(admin_user)
    projects = client.get("/").context["projects"]
    assert {p.slug: p.user_role for p in projects} == {"demo": "admin", "other": "admin"}


def test_dashboard_query_count_does_not_grow_with_projects(client, researcher, presets, django_assert_num_queries):
    # given: a researcher in 1 project, then in 6
    client.force_login(researcher)

    def make(n: int) -> None:
        for i in range(n):
            services.project_create(
                slug=f"p{n}-{i}", name=f"P {n} {i}", taxonomy_version=presets["taxonomies"]["aegis-2.0"],
                created_by=researcher,
            )

    make(1)
    # session, user, groups (role), projects with counts
    with django_assert_num_queries(4):
        client.get("/")
    make(5)
    # then
    with django_assert_num_queries(4):
        response = client.get("/")
    assert len(response.context["projects"]) == 6


def test_dashboard_escapes_project_names(client, researcher, presets):
    services.project_create(
        slug="x", name=f"Evil {XSS_SCRIPT}", taxonomy_version=presets["taxonomies"]["aegis-2.0"], created_by=researcher
    )
    client.force_login(researcher)
    html = client.get("/").content.decode()
    assert XSS_SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- project page -------------------------------------------------------------------------------


def test_project_page_renders_guidelines_as_sanitised_markdown(client, annotator, project):
    # given
    project.guidelines = (
        "# Rules\n\nBe **careful**.\n\n"
        f"{XSS_SCRIPT}\n\n"
        "[click me](javascript:alert(3)) [docs](https://example.org/guide)\n\n"
        f"{XSS_IMG} <a href=\"javascript:alert(4)\" onclick=\"alert(5)\">raw link</a>"
    )
    project.save(update_fields=["guidelines"])
    client.force_login(annotator)
    # when
    html = client.get("/projects/demo/").content.decode()
    # then: the markdown is rendered...
    assert "<h3>Rules</h3>" in html and "<strong>careful</strong>" in html  # "# " sits below the page H1 and H2
    assert 'href="https://example.org/guide"' in html
    # ...and nothing executable survives
    guidelines = html.split('class="guidelines"', 1)[1]
    assert "<script" not in guidelines and "alert(1)" not in guidelines
    assert "javascript:" not in guidelines
    assert "onerror" not in guidelines and "onclick" not in guidelines and "<img" not in guidelines


def test_project_page_escapes_the_description(client, annotator, project):
    project.description = f"About {XSS_SCRIPT}"
    project.save(update_fields=["description"])
    client.force_login(annotator)
    html = client.get("/projects/demo/").content.decode()
    assert XSS_SCRIPT not in html and "&lt;script&gt;" in html


def test_project_page_shows_researchers_the_imports_and_annotators_not(client, researcher, annotator, batch):
    # given
    client.force_login(researcher)
    # when
    page = client.get("/projects/demo/")
    # then
    assert page.context["counts"].items == 3
    assert f"/projects/demo/imports/{batch.pk}/".encode() in page.content
    assert b"/projects/demo/import/" in page.content
    # given an annotator
    client.force_login(annotator)
    page = client.get("/projects/demo/")
    # then: counts, but no import link and no batches
    assert page.context["counts"].items == 3
    assert b"/import" not in page.content and b"/adjudicate/" not in page.content
    assert b'href="/annotate/demo/"' in page.content
    assert page.context["imports"] == []


def test_project_page_escapes_import_file_names(client, researcher, project, tmp_path):
    import_records(project, tmp_path, sample_records(1), user=researcher, name="a<script>x</script>.jsonl")
    client.force_login(researcher)
    html = client.get("/projects/demo/").content.decode()
    assert "<script>x</script>" not in html and "a&lt;script&gt;x&lt;/script&gt;.jsonl" in html


def test_project_page_query_count_is_constant(client, researcher, project, tmp_path, django_assert_num_queries):
    # given: one import, then four
    client.force_login(researcher)
    import_records(project, tmp_path, sample_records(2, prefix="a"), user=researcher, name="a.jsonl")
    # session, user, project, membership role, groups, 3 counts + aggregate, batches
    with django_assert_num_queries(9):
        client.get("/projects/demo/")
    for n in "bcd":
        import_records(project, tmp_path, sample_records(2, prefix=n), user=researcher, name=f"{n}.jsonl")
    with django_assert_num_queries(9):
        response = client.get("/projects/demo/")
    assert len(response.context["imports"]) == 4


def test_membership_role_change_takes_effect(client, annotator, project):
    # given an annotator promoted to researcher (site role and project role)
    services.user_set_role(user=annotator, role="researcher")
    services.membership_set(project=project, user=annotator, role=Membership.Role.RESEARCHER)
    client.force_login(annotator)
    # then
    assert client.get("/projects/demo/import/").status_code == 200
