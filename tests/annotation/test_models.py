"""Invariants of the core models, enforced by the database where it can."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction

from annotation import services
from annotation.models import Annotation, HazardCategory, ImmutableError, Item, Response


def _item(project, n=2):
    item = Item.objects.create(project=project, prompt=[{"role": "user", "content": "hi"}], content_hash=f"h{n}")
    responses = [Response.objects.create(item=item, position=i, text=f"r{i}") for i in range(n)]
    return item, responses


def test_presets_have_reference_codes(presets):
    aegis = presets["taxonomies"]["aegis-2.0"]
    groups = {g: list(aegis.categories.filter(group=g).values_list("name", flat=True)) for g in ("core", "fine", "special")}
    assert len(groups["core"]) == 12 and len(groups["fine"]) == 9
    assert sorted(groups["special"]) == ["Needs Caution", "Other"]
    assert aegis.categories.get(code="S7").aliases == ["Sexual (minor)"]
    lg = presets["taxonomies"]["llama-guard-3"]
    assert [c.code for c in lg.categories.all()] == [f"S{i}" for i in range(1, 15)]
    oai = presets["taxonomies"]["openai-moderation"]
    assert sorted(oai.categories.values_list("code", flat=True)) == sorted(["S", "H", "V", "HR", "SH", "S3", "H2", "V2"])
    assert 12 <= presets["principles"].principles.count() <= 20


def test_loading_presets_twice_changes_nothing(presets):
    before = HazardCategory.objects.count()
    services.taxonomy_load_presets()
    assert HazardCategory.objects.count() == before


def test_published_version_is_immutable_and_edits_make_a_new_version(presets):
    v1 = presets["taxonomies"]["aegis-2.0"]
    cat = v1.categories.first()
    cat.description = "changed"
    with pytest.raises(ImmutableError):
        cat.save()
    draft = services.taxonomy_version_new_draft(taxonomy=v1.taxonomy)
    assert draft.version == v1.version + 1 and draft.categories.count() == v1.categories.count()
    edited = draft.categories.get(code="S1")
    edited.description = "changed"
    edited.save()
    v2 = services.taxonomy_version_publish(version=draft)
    assert v2.is_published
    assert v1.categories.get(code="S1").description != "changed"


def test_annotations_are_append_only_in_the_database(project):
    item, (a, b) = _item(project)
    ann = Annotation.objects.create(
        project=project, item=item, source="import", pair_a=a, pair_b=b, pair_choice="a", pair_strength=2
    )
    with pytest.raises(ImmutableError):
        ann.save()
    # Even a queryset update, which skips save(), is refused by the database trigger.
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        Annotation.objects.filter(pk=ann.pk).update(rationale="rewritten")
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("DELETE FROM annotation_annotation WHERE id = %s", [ann.pk])
    assert Annotation.objects.filter(pk=ann.pk, rationale="").exists()


@pytest.mark.django_db(transaction=True)
def test_a_test_flush_empties_the_tables_and_leaves_the_append_only_triggers_on(project):
    # On PostgreSQL the flush that ends a transactional test is a TRUNCATE; on SQLite a DELETE,
    # for which tests/conftest.py lifts the triggers inside the flush only.
    from django.core.management import call_command

    item, (a, b) = _item(project)
    Annotation.objects.create(
        project=project, item=item, source="import", pair_a=a, pair_b=b, pair_choice="a", pair_strength=2
    )
    call_command("flush", interactive=False, verbosity=0)
    assert not Annotation.objects.exists() and not Item.objects.exists()
    # and afterwards the database still refuses to delete or rewrite an annotation
    versions = {v.taxonomy.slug: v for v in services.taxonomy_load_presets()}
    again = services.project_create(slug="again", name="Again", taxonomy_version=versions["aegis-2.0"])
    test_annotations_are_append_only_in_the_database(again)


@pytest.mark.parametrize(
    "fields",
    [
        {"pair_choice": "a", "pair_strength": 0},  # a win needs a strength of 1..3
        {"pair_choice": "tie", "pair_strength": 2},  # a tie has strength 0
        {"pair_choice": "a", "pair_strength": None, "source": "human"},  # only an import may lack a strength
        {"pair_choice": "a", "pair_strength": None, "source": "jury"},
        {"prompt_label": "dangerous"},  # not a safety label
        {"prompt_label": "unsafe", "taxonomy_version": None},  # a safety label names its taxonomy version
        {"confidence": 9},
        {"source": "human", "annotator": None},
    ],
)
def test_database_rejects_malformed_annotations(project, fields):
    item, (a, b) = _item(project)
    values = {"project": project, "item": item, "source": "import"}
    if "pair_choice" in fields:
        values.update(pair_a=a, pair_b=b)
    values.update(fields)
    if values["source"] == "human" and "annotator" not in fields:
        values["annotator"] = get_user_model().objects.create_user("rater-x")
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(**values)


def test_an_imported_preference_may_state_no_strength(project):
    # HH-RLHF says which side won, not by how much: the record keeps no strength instead of a default
    item, (a, b) = _item(project)
    ann = Annotation.objects.create(project=project, item=item, source="import", pair_a=a, pair_b=b, pair_choice="b")
    assert Annotation.objects.get(pk=ann.pk).pair_strength is None


def test_a_pair_compares_two_different_responses(project):
    item, (a, _b) = _item(project)
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(project=project, item=item, source="import", pair_a=a, pair_b=a, pair_choice="a", pair_strength=1)


def test_same_content_cannot_be_stored_twice_in_a_project(project):
    _item(project)
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.create(project=project, prompt=[], content_hash="h2")
