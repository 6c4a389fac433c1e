"""Django admin: who gets in, list pages and search, read-only records, taxonomy actions."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from annotation import services
from annotation.models import Annotation, HazardCategory, Taxonomy, TaxonomyVersion
from tests.annotation.web_fixtures import XSS_IMG, XSS_SCRIPT, add_human_annotation, batch, item  # noqa: F401

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "annotation/taxonomy", "annotation/taxonomyversion", "annotation/hazardcategory", "annotation/principleset",
    "annotation/principle", "annotation/project", "annotation/membership", "annotation/importbatch",
    "annotation/item", "annotation/annotation", "auth/user", "auth/group",
]


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_every_list_page_loads_and_searches_for_the_admin(client, admin_user, annotator, item, changelist):
    # given
    add_human_annotation(item=item, annotator=annotator)
    client.force_login(admin_user)
    # when
    listing = client.get(f"/admin/{changelist}/")
    search = client.get(f"/admin/{changelist}/?q=a")
    # then
    assert listing.status_code == 200, changelist
    assert search.status_code == 200, changelist


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_annotators_and_researchers_are_sent_to_the_admin_login(client, annotator, researcher, changelist):
    for user in (annotator, researcher):
        client.force_login(user)
        response = client.get(f"/admin/{changelist}/")
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_stray_staff_flag_opens_nothing(client, annotator):
    # given an annotator someone marked staff by hand
    annotator.is_staff = True
    annotator.save(update_fields=["is_staff"])
    client.force_login(annotator)
    # then: admin lets them in the door, but no model is theirs
    assert client.get("/admin/annotation/item/").status_code == 403
    index = client.get("/admin/")
    assert index.status_code == 200 and index.context["app_list"] == []
    assert b"have permission to view or edit anything" in index.content


def test_item_search_finds_by_external_id(client, admin_user, item):
    client.force_login(admin_user)
    response = client.get("/admin/annotation/item/?q=q-1")
    assert [i.external_id for i in response.context["cl"].result_list] == ["q-1"]


def test_admin_pages_escape_model_text(client, admin_user, annotator, item):
    # given
    annotation = add_human_annotation(item=item, annotator=annotator, rationale=f"see {XSS_IMG}")
    client.force_login(admin_user)
    # when
    item_html = client.get(f"/admin/annotation/item/{item.pk}/change/").content.decode()
    annotation_html = client.get(f"/admin/annotation/annotation/{annotation.pk}/change/").content.decode()
    # then
    assert "Question 0 (q): &lt;script&gt;alert(1)&lt;/script&gt;" in item_html  # the prompt, shown escaped
    assert "Answer A0 &lt;img src=x onerror=" in item_html  # a response, shown escaped
    assert "see &lt;img src=x onerror=" in annotation_html
    for html in (item_html, annotation_html):
        assert XSS_SCRIPT not in html and XSS_IMG not in html


def test_annotations_cannot_be_added_changed_or_deleted_in_admin(client, admin_user, annotator, item):
    # given
    annotation = add_human_annotation(item=item, annotator=annotator)
    client.force_login(admin_user)
    # then
    assert client.get("/admin/annotation/annotation/add/").status_code == 403
    assert client.get(f"/admin/annotation/annotation/{annotation.pk}/delete/").status_code == 403
    page = client.get(f"/admin/annotation/annotation/{annotation.pk}/change/")
    assert page.status_code == 200 and b'type="submit" value="Save"' not in page.content
    response = client.post(f"/admin/annotation/annotation/{annotation.pk}/change/", {"rationale": "rewritten"})
    assert response.status_code == 403
    assert Annotation.objects.get(pk=annotation.pk).rationale == "looks fine"


def test_imports_and_items_are_read_only(client, admin_user, batch, item):
    client.force_login(admin_user)
    assert client.get("/admin/annotation/importbatch/add/").status_code == 403
    assert client.get(f"/admin/annotation/item/{item.pk}/delete/").status_code == 403
    assert client.post(f"/admin/annotation/item/{item.pk}/change/", {"external_id": "x"}).status_code == 403


def test_new_draft_and_publish_actions(client, admin_user, presets):
    # given
    client.force_login(admin_user)
    published = presets["taxonomies"]["aegis-2.0"]
    # when: the "create new draft version" action
    response = client.post(
        "/admin/annotation/taxonomyversion/",
        {"action": "action_new_draft", "_selected_action": [published.pk]},
        follow=True,
    )
    # then
    assert response.status_code == 200
    draft = TaxonomyVersion.objects.get(taxonomy=published.taxonomy, status="draft")
    assert draft.version == 2 and draft.categories.count() == published.categories.count()
    # a published version's change page is read-only; the draft's is editable
    assert b'name="_save"' not in client.get(f"/admin/annotation/taxonomyversion/{published.pk}/change/").content
    assert b'name="_save"' in client.get(f"/admin/annotation/taxonomyversion/{draft.pk}/change/").content
    # when: publish, confirmed on the diff page
    publish = {"action": "action_publish", "_selected_action": [draft.pk], "confirm": "yes"}
    client.post("/admin/annotation/taxonomyversion/", publish, follow=True)
    # then
    draft.refresh_from_db()
    assert draft.is_published and draft.published_at is not None
    # publishing again reports an error instead of crashing
    again = client.post("/admin/annotation/taxonomyversion/", publish, follow=True)
    assert again.status_code == 200 and b"already published" in again.content


def test_categories_of_a_published_version_are_read_only(client, admin_user, presets):
    client.force_login(admin_user)
    category = HazardCategory.objects.filter(version=presets["taxonomies"]["aegis-2.0"]).first()
    response = client.post(f"/admin/annotation/hazardcategory/{category.pk}/change/", {"name": "renamed"})
    assert response.status_code == 403
    category.refresh_from_db()
    assert category.name != "renamed"


def test_taxonomy_action_creates_a_draft(client, admin_user, presets):
    client.force_login(admin_user)
    taxonomy = Taxonomy.objects.get(slug="llama-guard-3")
    client.post(
        "/admin/annotation/taxonomy/",
        {"action": "action_new_draft_from_taxonomy", "_selected_action": [taxonomy.pk]},
    )
    assert taxonomy.versions.filter(status="draft").count() == 1


def test_role_actions_set_groups_and_staff_together(client, admin_user, annotator):
    # given
    client.force_login(admin_user)
    # when: make the annotator an admin, then back
    client.post("/admin/auth/user/", {"action": "make_admin", "_selected_action": [annotator.pk]})
    user = get_user_model().objects.get(pk=annotator.pk)
    # then
    assert user.is_staff and sorted(user.groups.values_list("name", flat=True)) == ["admin"]
    client.post("/admin/auth/user/", {"action": "make_annotator", "_selected_action": [annotator.pk]})
    user = get_user_model().objects.get(pk=annotator.pk)
    assert not user.is_staff and sorted(user.groups.values_list("name", flat=True)) == ["annotator"]


def test_user_set_role_rejects_unknown_roles(annotator):
    with pytest.raises(ValueError):
        services.user_set_role(user=annotator, role="overlord")


def test_publishing_asks_first_and_shows_the_diff_against_the_previous_version(client, admin_user, presets):
    # given: a draft of Aegis 2.0 with one category renamed, one alias added, one removed and one new
    client.force_login(admin_user)
    published = presets["taxonomies"]["aegis-2.0"]
    draft = services.taxonomy_version_new_draft(taxonomy=published.taxonomy)
    first, second, *_ = list(draft.categories.order_by("order"))
    first.name = "Renamed <b>hazard</b>"
    first.aliases = [*first.aliases, "new alias"]
    first.save()
    removed_code = second.code
    second.delete()
    HazardCategory.objects.create(version=draft, code="S99", name="Brand new", order=99)
    # when: the publish action without the confirmation
    response = client.post(
        "/admin/annotation/taxonomyversion/", {"action": "action_publish", "_selected_action": [draft.pk]}
    )
    # then: a confirmation page with the differences, and nothing published yet
    assert response.status_code == 200
    html = response.content.decode()
    assert "Publish taxonomy versions?" in html and 'name="confirm" value="yes"' in html
    assert f"against {published}" in html
    assert "S99 Brand new" in html and "added" in html
    assert removed_code in html and "removed" in html
    assert "Renamed &lt;b&gt;hazard&lt;/b&gt;" in html and "<b>hazard</b>" not in html
    assert "new alias" in html
    draft.refresh_from_db()
    assert not draft.is_published
    # when: confirmed
    client.post(
        "/admin/annotation/taxonomyversion/",
        {"action": "action_publish", "_selected_action": [draft.pk], "confirm": "yes"},
    )
    draft.refresh_from_db()
    assert draft.is_published


def test_category_editor_is_stacked_and_takes_aliases_as_a_comma_list(client, admin_user, presets):
    # given: a draft version
    client.force_login(admin_user)
    draft = services.taxonomy_version_new_draft(taxonomy=presets["taxonomies"]["aegis-2.0"].taxonomy)
    category = draft.categories.exclude(aliases=[]).order_by("order").first()
    assert category is not None
    # then: the draft's page stacks categories (no tabular inline) and shows aliases as text, not JSON
    page = client.get(f"/admin/annotation/taxonomyversion/{draft.pk}/change/").content.decode()
    assert 'data-inline-type="stacked"' in page and 'data-inline-type="tabular"' not in page
    assert ", ".join(category.aliases) in page and '["' not in page
    # when: aliases are typed as a comma list with a repeat and stray spaces
    response = client.post(
        f"/admin/annotation/hazardcategory/{category.pk}/change/",
        {
            "version": draft.pk, "order": category.order, "code": category.code, "name": category.name,
            "group": category.group, "description": category.description,
            "aliases": " Hate speech,identity  hate , hate speech,, ",
        },
    )
    # then: stored as a clean JSON list
    assert response.status_code == 302, response.content[:2000]
    category.refresh_from_db()
    assert category.aliases == ["Hate speech", "identity hate"]


@pytest.mark.parametrize("status,view", [(403, "permission_denied"), (404, "page_not_found")])
def test_error_pages_are_styled_with_navigation(rf, annotator, status, view):
    from django.core.exceptions import PermissionDenied
    from django.http import Http404
    from django.views import defaults

    request = rf.get("/projects/nope/")
    request.user = annotator
    exception = PermissionDenied() if status == 403 else Http404()
    response = getattr(defaults, view)(request, exception)
    html = response.content.decode()
    assert response.status_code == status
    assert 'class="topbar"' in html and "Back to your projects" in html and "tribunal.css" in html


def test_server_error_page_needs_no_context(client, django_assert_num_queries):
    from django.test import RequestFactory
    from django.views import defaults

    with django_assert_num_queries(0):
        response = defaults.server_error(RequestFactory().get("/"))
    html = response.content.decode()
    assert response.status_code == 500 and "Something went wrong" in html and "Back to your projects" in html


def test_unknown_html_page_gets_the_styled_404(client, annotator):
    client.force_login(annotator)
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and b"Back to your projects" in response.content
    api = client.get("/api/no-such-endpoint/")
    assert api.status_code == 404 and api.json()["code"] == "not_found"
