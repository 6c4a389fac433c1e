"""Edit review items in the workbench (issue 11): the queue serves them like any item, the
judgment rules of an edit review (accept / reject / fix), the human fix as a Response, undo,
double submits, adjudication and the review consensus (annotation.selectors.edit_review_outcomes)."""
from __future__ import annotations

import pytest

from annotation import services
from annotation.judgments import Judgment, JudgmentInvalid, ResponseLabel
from annotation.models import Annotation, Item, Response
from annotation.selectors import edit_review_outcomes
from annotation.workbench import services as wb
from tests.annotation.edit_review_fixtures import make_review_items, review_by_plan
from tests.annotation.workbench_fixtures import full_judgment, make_annotators, make_items

pytestmark = pytest.mark.django_db


def _review_lease(project, user):
    """Submit judge items until the queue hands ``user`` a review item; that lease."""
    for _ in range(20):
        a = wb.queue_next(project=project, annotator=user)
        assert a is not None
        if a.item.kind == Item.Kind.EDIT_REVIEW:
            return a
        wb.annotation_submit(project=project, annotator=user, item_id=a.item_id,
                             judgment=full_judgment(project, a.shown_order))
    raise AssertionError("no review item served")


def test_the_queue_serves_review_items_after_judge_items_of_the_same_priority(project, tmp_path, annotator):
    reviews = make_review_items(project, tmp_path, n=2)
    later_judge = make_items(project, tmp_path, 1, prefix="late")[0]
    served = []
    while (a := wb.queue_next(project=project, annotator=annotator)) is not None:
        served.append(a.item_id)
        if a.item.kind == Item.Kind.EDIT_REVIEW:
            assert a.shown_order == []  # a review shows the edit by its item, not as a judged response
            wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id,
                                 judgment=Judgment(edit_verdict="accept"))
        else:
            assert all(Response.objects.get(pk=r).origin == "imported" for r in a.shown_order)
            wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id,
                                 judgment=full_judgment(project, a.shown_order))
    # one order for all: priority, then creation order; an edit run makes its review items after the items
    assert served == sorted(served)
    assert {r.pk for r in reviews} <= set(served) and later_judge.pk in served
    assert len(served) == 2 * 2 + 1


def test_accept_and_reject_are_stored_with_a_rationale(project, tmp_path, annotator):
    make_review_items(project, tmp_path, n=2)
    a = _review_lease(project, annotator)
    result = wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id,
                                  judgment=Judgment(edit_verdict="reject", rationale=" adds a harm ", confidence=4))
    ann = result.annotation
    assert (ann.edit_verdict, ann.edit_fix_id, ann.rationale, ann.confidence) == ("reject", None, "adds a harm", 4)
    assert (ann.ranking, ann.prompt_label, ann.taxonomy_version_id) == (None, "", None)


def test_a_fix_is_stored_as_a_human_edit_of_the_edit(project, tmp_path, annotator):
    items = make_review_items(project, tmp_path, n=1)
    edit = items[0].review_of
    a = _review_lease(project, annotator)
    result = wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id,
                                  judgment=Judgment(edit_verdict="fix", edit_fix="  Never mix cleaners.  "))
    fix = result.annotation.edit_fix
    assert result.annotation.edit_verdict == "fix"
    assert (fix.origin, fix.parent_id, fix.item_id, fix.text) == ("human_edited", edit.pk, edit.item_id, "Never mix cleaners.")
    assert fix.position == edit.position + 1
    # a human fix is not an ordinary response either: the judge item still shows its original only
    assert list(Response.objects.judged().filter(item_id=edit.item_id).values_list("origin", flat=True)) == ["imported"]


@pytest.mark.parametrize(("judgment", "field"), [
    (Judgment(), "edit_verdict"),
    (Judgment(edit_verdict="maybe"), "edit_verdict"),
    (Judgment(edit_verdict="fix"), "edit_fix"),
    (Judgment(edit_verdict="fix", edit_fix="   "), "edit_fix"),
    (Judgment(edit_verdict="accept", edit_fix="my text"), "edit_fix"),
    (Judgment(edit_verdict="accept", prompt_label="safe"), "__all__"),
    (Judgment(edit_verdict="accept", ranking=[[1]]), "__all__"),
    (Judgment(edit_verdict="accept", confidence=9), "confidence"),
])
def test_an_edit_review_refuses_what_is_not_a_verdict(project, tmp_path, annotator, judgment, field):
    make_review_items(project, tmp_path, n=1)
    a = _review_lease(project, annotator)
    with pytest.raises(JudgmentInvalid) as exc:
        wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id, judgment=judgment)
    assert field in exc.value.errors
    assert not Annotation.objects.filter(item_id=a.item_id).exists()
    assert not Response.objects.filter(origin="human_edited").exists()


def test_a_fix_equal_to_the_edit_is_refused_as_an_accept(project, tmp_path, annotator):
    items = make_review_items(project, tmp_path, n=1)
    a = _review_lease(project, annotator)
    with pytest.raises(JudgmentInvalid) as exc:
        wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id,
                             judgment=Judgment(edit_verdict="fix", edit_fix=items[0].review_of.text + "\n"))
    assert "accept the edit instead" in exc.value.errors["edit_fix"][0]


def test_a_judge_item_refuses_a_verdict(project, tmp_path, annotator):
    make_items(project, tmp_path, 1)
    a = wb.queue_next(project=project, annotator=annotator)
    with pytest.raises(JudgmentInvalid) as exc:
        wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id,
                             judgment=full_judgment(project, a.shown_order, edit_verdict="accept"))
    assert "edit_verdict" in exc.value.errors


def test_machines_do_not_review_edits(project, tmp_path):
    items = make_review_items(project, tmp_path, n=1)
    with pytest.raises(JudgmentInvalid):
        services.judgment_record(project=project, item_id=items[0].pk, judgment=Judgment(edit_verdict="accept"),
                                 source="jury", shown_order=[], source_detail="jury-x")
    # and a jury judgment of a judge item still records as before
    judge = Item.objects.filter(project=project, kind="judge").first()
    order = list(Response.objects.judged().filter(item=judge).values_list("pk", flat=True))
    ann = services.judgment_record(project=project, item_id=judge.pk, source="jury", shown_order=order,
                                   judgment=Judgment(response_labels={order[0]: ResponseLabel("safe")}))
    assert ann.edit_verdict == ""


def test_a_double_submit_stores_one_record_and_one_fix(project, tmp_path, annotator):
    make_review_items(project, tmp_path, n=1)
    a = _review_lease(project, annotator)
    judgment = Judgment(edit_verdict="fix", edit_fix="Never mix cleaners.")
    first = wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id, judgment=judgment,
                                 idempotency_key="k-1")
    again = wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id, judgment=judgment,
                                 idempotency_key="k-1")
    assert (again.replayed, again.annotation.pk) == (True, first.annotation.pk)
    assert Response.objects.filter(origin="human_edited").count() == 1
    with pytest.raises(Exception, match="different answer"):
        wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id,
                             judgment=Judgment(edit_verdict="fix", edit_fix="Another fix."), idempotency_key="k-1")


def test_undo_withdraws_the_verdict_and_the_next_one_stands(project, tmp_path, annotator):
    items = make_review_items(project, tmp_path, n=1)
    edit_id = items[0].review_of_id
    a = _review_lease(project, annotator)
    wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id,
                         judgment=Judgment(edit_verdict="fix", edit_fix="Never mix cleaners."))
    assert edit_review_outcomes(project)[edit_id].verdict == "fix"
    undone = wb.annotation_undo_last(project=project, annotator=annotator)
    assert undone.item_id == a.item_id
    assert edit_review_outcomes(project)[edit_id].verdict is None
    wb.annotation_submit(project=project, annotator=annotator, item_id=a.item_id, judgment=Judgment(edit_verdict="accept"))
    outcome = edit_review_outcomes(project)[edit_id]
    assert (outcome.verdict, outcome.fix_response_id, outcome.votes) == ("accept", None, {"accept": 1})


def test_outcomes_majority_tie_and_adjudication(project, tmp_path, annotator, researcher):
    project.overlap = 3
    project.save(update_fields=["overlap"])
    items = make_review_items(project, tmp_path, n=3)
    raters = [annotator, *make_annotators(project, 2)]
    plan = {  # item index -> verdict of each rater
        0: ["accept", "accept", "reject"],
        1: ["reject", "fix", None],   # the third rater skips: a tie
        2: ["fix", "fix", "accept"],
    }
    fixes = review_by_plan(project, items, raters, plan)
    outcomes = edit_review_outcomes(project)
    assert set(outcomes) == {i.review_of_id for i in items}
    o0, o1, o2 = (outcomes[i.review_of_id] for i in items)
    assert (o0.verdict, o0.votes, o0.adjudicated) == ("accept", {"accept": 2, "reject": 1}, False)
    assert (o1.verdict, o1.fix_response_id) == (None, None)
    assert (o2.verdict, o2.fix_response_id) == ("fix", fixes[(items[2].pk, 1)])  # the newest fix stands
    # a researcher decides the tie, with a fix of their own
    decision = wb.adjudication_record(project=project, adjudicator=researcher, item=items[1],
                                      judgment=Judgment(edit_verdict="fix", edit_fix="The researcher's fix."))
    o1 = edit_review_outcomes(project)[items[1].review_of_id]
    assert (o1.verdict, o1.fix_response_id, o1.adjudicated) == ("fix", decision.edit_fix_id, True)
    assert Response.objects.get(pk=decision.edit_fix_id).parent_id == items[1].review_of_id
    # and a later decision supersedes it
    wb.adjudication_record(project=project, adjudicator=researcher, item=items[1], judgment=Judgment(edit_verdict="reject"))
    assert edit_review_outcomes(project)[items[1].review_of_id].verdict == "reject"
