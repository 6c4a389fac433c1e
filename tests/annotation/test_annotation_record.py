"""annotation.services.annotation_record: the one way a validated judgment becomes an Annotation."""
from __future__ import annotations

from annotation.judgments import CleanJudgment, ResponseLabel
from annotation.models import Annotation, ResponseSafety
from annotation.services import annotation_record
from tests.annotation.workbench_fixtures import make_items


def test_it_stores_the_judgment_with_its_labels_and_principles(project, tmp_path, annotator):
    # given
    item = make_items(project, tmp_path, 1)[0]
    r1, r2, r3 = item.responses.order_by("position").values_list("pk", flat=True)
    principle = project.principle_set.principles.order_by("order").first()
    clean = CleanJudgment(
        ranking=[[r2], [r1, r3]], pair_a=None, pair_b=None, pair_choice="", pair_strength=None,
        prompt_label="unsafe", prompt_categories=["S1"],
        response_labels={r1: ResponseLabel("safe"), r2: ResponseLabel("unsafe", ("S1",))},
        principle_ids=[principle.pk], principles_conflicted=False, rationale="why", confidence=4, has_safety=True,
    )
    # when
    ann = annotation_record(project=project, item_id=item.pk, clean=clean, source=Annotation.Source.HUMAN,
                            annotator=annotator, shown_order=[r2, r1, r3], duration_ms=1200)
    # then
    ann = Annotation.objects.get(pk=ann.pk)
    assert (ann.ranking, ann.prompt_label, ann.prompt_categories, ann.rationale, ann.confidence) == (
        [[r2], [r1, r3]], "unsafe", ["S1"], "why", 4)
    assert ann.taxonomy_version_id == project.taxonomy_version_id and ann.duration_ms == 1200
    assert sorted(ResponseSafety.objects.filter(annotation=ann).values_list("response_id", "label", "categories")) == sorted(
        [(r1, "safe", []), (r2, "unsafe", ["S1"])])
    assert list(ann.principles.values_list("pk", flat=True)) == [principle.pk]
