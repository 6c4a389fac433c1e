"""One service records judgments from every source, by one set of rules (the machine leniency is
declared once), and one service raises an item's queue priority with a reason."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotation import services
from annotation.judgments import MACHINE_RULES, STRICT_RULES, Judgment, JudgmentInvalid, ResponseLabel, rules_for
from annotation.models import Annotation, Item, PriorityRaise
from tests.annotation.workbench_fixtures import full_judgment, make_annotators, make_items

pytestmark = pytest.mark.django_db


def _order(item: Item) -> list[int]:
    return list(item.responses.order_by("position").values_list("pk", flat=True))


def test_each_source_has_its_rules():
    assert rules_for("human") is STRICT_RULES and rules_for("adjudication") is STRICT_RULES
    assert rules_for("jury") is MACHINE_RULES and MACHINE_RULES.any_mode
    assert rules_for("import").every_response_labelled is False


def test_a_machine_answers_one_task_whatever_the_mode_and_a_person_may_not(project, tmp_path):
    # a ranking + safety project; a jury preference run of two responses records ranking AND pair
    item = make_items(project, tmp_path, 1, responses=2)[0]
    a, b = _order(item)
    preference = Judgment(ranking=[[b], [a]], pair_choice="b", pair_strength=2)
    ann = services.judgment_record(project=project, item_id=item.pk, judgment=preference, source="jury",
                                   source_detail="panel", shown_order=[a, b], store_shown_order=False)
    assert (ann.ranking, ann.pair_a_id, ann.pair_b_id, ann.pair_choice, ann.pair_strength) == ([[b], [a]], a, b, "b", 2)
    assert ann.taxonomy_version_id is None and ann.shown_order is None
    with pytest.raises(JudgmentInvalid) as err:
        services.judgment_record(project=project, item_id=item.pk, judgment=preference, source="human",
                                 shown_order=[a, b])
    assert "pair_choice" in err.value.errors  # a person on this project ranks and labels; no pair


def test_machine_safety_labels_may_be_partial_with_categories_on_caution_but_shapes_are_checked(project, tmp_path):
    item = make_items(project, tmp_path, 1, responses=2)[0]
    a, b = _order(item)
    partial = Judgment(prompt_label="needs_caution", prompt_categories=("S1",),
                       response_labels={a: ResponseLabel("unsafe", ())})
    ann = services.judgment_record(project=project, item_id=item.pk, judgment=partial, source="jury",
                                   shown_order=[a, b], taxonomy_version_id=project.taxonomy_version_id)
    assert ann.prompt_categories == ["S1"] and ann.response_safety.get().response_id == a
    # still refused for a machine: an unknown category, an unknown label, a response of another item
    for bad in (Judgment(prompt_label="unsafe", prompt_categories=("NOPE",)),
                Judgment(response_labels={a: ResponseLabel("dangerous", ())}),
                Judgment(response_labels={10**9: ResponseLabel("safe", ())})):
        with pytest.raises(JudgmentInvalid):
            services.judgment_record(project=project, item_id=item.pk, judgment=bad, source="jury", shown_order=[a, b])
    assert Annotation.objects.filter(item=item).count() == 1


def test_priority_is_raised_with_a_reason_once_per_source_and_never_lowered(project, tmp_path):
    item = make_items(project, tmp_path, 1)[0]
    services.item_priority_raise(item=item, priority=12, reason="jury panel: split 2-1", source="jury",
                                 source_detail="run 1")
    services.item_priority_raise(item=item, priority=12, reason="jury panel: split 2-1", source="jury",
                                 source_detail="run 1")  # a resumed run
    services.item_priority_raise(item=item, priority=5, reason="guard unsure", source="guard", source_detail="v1")
    item.refresh_from_db()
    assert item.priority == 12
    assert list(PriorityRaise.objects.filter(item=item).values_list("source", "priority")) == [("jury", 12), ("guard", 5)]


def test_the_adjudication_pages_show_why_an_item_was_raised(project, tmp_path, researcher):
    item = make_items(project, tmp_path, 1)[0]
    order = _order(item)
    for person in make_annotators(project, 2):
        services.judgment_record(project=project, item_id=item.pk, source="human", annotator=person,
                                 judgment=full_judgment(project, order), shown_order=order)
    services.item_priority_raise(item=item, priority=15, source="jury", source_detail="run 9",
                                 reason="jury panel (safety): i1:prompt: <b>split</b>")
    c = Client()
    c.force_login(researcher)
    listing = c.get(reverse("adjudication", args=[project.slug])).content.decode()
    assert 'data-testid="raised"' in listing and "&lt;b&gt;split&lt;/b&gt;" in listing and "<b>split" not in listing
    detail = c.get(reverse("adjudication-item", args=[project.slug, item.pk])).content.decode()
    assert "Why it is here" in detail and "Priority 15" in detail
