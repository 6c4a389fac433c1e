"""The adjudication queue: ordered by disagreement, human vs human and human vs jury."""
from __future__ import annotations

import pytest

from annotation.models import Annotation, ResponseSafety
from annotation.workbench import selectors
from annotation.workbench import services as wb
from annotation.workbench.judgments import ResponseLabel
from tests.annotation.workbench_fixtures import full_judgment, make_annotators, make_items

pytestmark = pytest.mark.django_db


def judge(project, user, *, reverse: bool = False, unsafe_first: bool = False):
    a = wb.queue_next(project=project, annotator=user)
    assert a is not None
    order = sorted(a.shown_order)
    ranking = [[r] for r in (order[::-1] if reverse else order)]
    labels = {rid: ResponseLabel("safe") for rid in order}
    if unsafe_first:
        labels[order[0]] = ResponseLabel("unsafe", ("S1",))
    wb.annotation_submit(
        project=project, annotator=user, item_id=a.item_id,
        judgment=full_judgment(project, a.shown_order, ranking=ranking, response_labels=labels),
    )
    return a.item_id


def test_items_are_ordered_by_disagreement_and_the_jury_counts(project, tmp_path):
    # given: item 1 both annotators agree; item 2 they rank in opposite orders; item 3 one human + a jury that disagrees
    items = make_items(project, tmp_path, 3)
    u1, u2 = make_annotators(project, 2)
    agreed = judge(project, u1)
    assert judge(project, u2) == agreed
    opposed = judge(project, u1)
    assert judge(project, u2, reverse=True, unsafe_first=True) == opposed
    lone = judge(project, u1)
    order = sorted(items[2].responses.values_list("pk", flat=True))
    jury = Annotation(project=project, item_id=lone, source="jury", source_detail="panel", ranking=[[r] for r in order[::-1]],
                      taxonomy_version=project.taxonomy_version)
    jury.save()
    ResponseSafety.objects.bulk_create([ResponseSafety(annotation=jury, response_id=r, label="safe") for r in order])
    # when
    rows = selectors.adjudication_queue(project)
    # then
    by_item = {r.item.pk: r for r in rows}
    assert [r.item.pk for r in rows][:2] in ([opposed, lone], [lone, opposed])
    assert by_item[opposed].human_human == pytest.approx(1.0)
    assert by_item[agreed].human_human == pytest.approx(0.0)
    assert by_item[lone].human_human is None and by_item[lone].human_jury == pytest.approx(1.0)
    assert rows[-1].item.pk == agreed
    # a decided item moves to the end
    order1 = sorted(items[1].responses.values_list("pk", flat=True))
    wb.adjudication_record(project=project, adjudicator=u1, item=items[1], judgment=full_judgment(project, order1))
    assert selectors.adjudication_queue(project)[-1].decided


def test_a_retracted_judgment_does_not_count(project, tmp_path):
    make_items(project, tmp_path, 1)
    u1, u2 = make_annotators(project, 2)
    judge(project, u1)
    judge(project, u2, reverse=True)
    assert len(selectors.adjudication_queue(project)) == 1
    wb.annotation_undo_last(project=project, annotator=u2)
    assert selectors.adjudication_queue(project) == []


def test_rater_letters_are_mapped_to_the_page_letters(project, tmp_path, client, researcher):
    from django.urls import reverse

    from annotation.judgments import response_letter
    from annotation.models import Assignment

    # given: an annotator who saw the responses in the reverse of source order and wrote about "A"
    (item,) = make_items(project, tmp_path, 1)
    (user,) = make_annotators(project, 1)
    lease = wb.queue_next(project=project, annotator=user)
    source = [r.pk for r in sorted(item.responses.all(), key=lambda r: r.position)]
    shown = source[::-1]
    Assignment.objects.filter(pk=lease.pk).update(shown_order=shown)
    wb.annotation_submit(
        project=project, annotator=user, item_id=item.pk,
        judgment=full_judgment(project, shown, ranking=[[r] for r in shown], rationale="A is factually right"),
    )
    # when
    client.force_login(researcher)
    html = client.get(reverse("adjudication-item", args=[project.slug, item.pk])).content.decode()
    # then: the rationale's "A" is this page's last letter
    page_letters = {rid: response_letter(n) for n, rid in enumerate(source)}
    expected = [(response_letter(n), page_letters[rid]) for n, rid in enumerate(shown)]
    assert "A is factually right" in html
    assert f"their A is {response_letter(len(source) - 1)} here" in html
    detail = selectors.adjudication_detail(project, item.pk)
    assert selectors.annotation_rows(detail, page_letters)[0].letter_map == expected
    assert selectors.rater_letter_map(source, page_letters) == []
