"""Annotation.objects.current(): the record that stands in each correction chain (and its SQL twin)."""
from __future__ import annotations

from django.db import connection

from annotation.models import Annotation
from annotation.workbench import services as wb
from tests.annotation.workbench_fixtures import full_judgment, make_annotators, make_items


def _submit(project, user):
    lease = wb.queue_next(project=project, annotator=user)
    return wb.annotation_submit(project=project, annotator=user, item_id=lease.item_id,
                                judgment=full_judgment(project, list(lease.shown_order))).annotation


def _current_by_sql(project) -> set[int]:
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT a.id FROM {Annotation._meta.db_table} a WHERE a.project_id = %s AND "
            + Annotation.objects.current_sql("a"),
            [project.pk],
        )
        return {row[0] for row in cur.fetchall()}


def test_current_keeps_the_newest_record_of_each_chain_and_drops_withdrawn_chains(project, tmp_path):
    # given: three annotators; one submits, one submits then undoes, one submits, undoes and resubmits
    project.overlap = 3
    project.save(update_fields=["overlap"])
    make_items(project, tmp_path, 1)
    kept, withdrawn, corrected = make_annotators(project, 3)
    first = _submit(project, kept)
    _submit(project, withdrawn)
    wb.annotation_undo_last(project=project, annotator=withdrawn)
    _submit(project, corrected)
    wb.annotation_undo_last(project=project, annotator=corrected)
    correction = _submit(project, corrected)
    # when
    current = set(Annotation.objects.filter(project=project).current().values_list("pk", flat=True))
    # then: 6 records stored, 2 stand; the SQL form used by exports agrees
    assert Annotation.objects.filter(project=project).count() == 6
    assert current == {first.pk, correction.pk}
    assert _current_by_sql(project) == current
