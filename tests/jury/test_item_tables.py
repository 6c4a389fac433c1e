"""The jury item page's tables: one per target with every rater's label side by side, preferences in
response letters, disagreements marked against the people's majority."""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
from django.urls import reverse

from annotation import services as annotation_services
from annotation.judgments import Judgment, ResponseLabel
from jury import item_tables
from tests.jury.conftest import import_items

pytestmark = pytest.mark.django_db


def _response(pk, position):
    return NS(pk=pk, position=position)


def _safety(response_id, label, categories=()):
    return NS(response_id=response_id, label=label, categories=list(categories))


class _Labels(list):
    def all(self):
        return self


def _annotation(source, who, *, prompt_label="", safety=(), ranking=None, pair=None, rationale="", rater=""):
    pair = pair or {}
    return NS(
        source=source, annotator_id=1 if who else None, annotator=NS(get_username=lambda: who) if who else None,
        source_detail="",
        rater=rater, prompt_label=prompt_label, prompt_categories=[], response_safety=_Labels(safety),
        ranking=ranking, pair_choice=pair.get("choice", ""), pair_a_id=pair.get("a"), pair_b_id=pair.get("b"),
        pair_strength=pair.get("strength"), rationale=rationale,
    )


def _verdict(juror, run, *, task="safety", response=None, response_b=None, label="", p=None, order=0, cats=None,
             principle=None, consistent=None):
    return NS(juror=NS(name=juror), run_id=run, task=task, response_id=response, response_b_id=response_b, label=label,
              p_positive=p, order=order, category_probs=cats or {}, principle_id=1 if principle else None,
              principle=NS(short=principle) if principle else None, position_consistent=consistent)


RESPONSES = [_response(71, 1), _response(70, 0), _response(72, 2)]  # letters follow position: 70 A, 71 B, 72 C


def test_one_table_per_target_with_people_and_jurors_side_by_side():
    annotations = [
        _annotation("human", "ann", prompt_label="unsafe", safety=[_safety(70, "unsafe", ["S1"]), _safety(71, "safe")]),
        _annotation("human", "bea", prompt_label="unsafe", safety=[_safety(70, "unsafe", ["S1"]), _safety(71, "safe")]),
        _annotation("import", None, prompt_label="safe", safety=[_safety(70, "safe")], rater="r3"),
    ]
    verdicts = [
        _verdict("smol", 4, response=70, label="unsafe", p=0.91, cats={"S1": 0.8, "S2": 0.2}),
        _verdict("gemma", 4, response=71, label="unsafe", p=0.66),
        _verdict("smol", 4, label="unsafe", p=0.7),  # the prompt
        _verdict("smol", 4, task="preference", response=70, response_b=71, label="A", p=0.6),  # not a safety row
    ]
    tables = item_tables.safety_tables(responses=RESPONSES, annotations=annotations, verdicts=verdicts)
    assert [t.name for t in tables] == ["Prompt", "Response A", "Response B", "Response C"]
    prompt, a, b, c = tables
    assert [(r.who, r.label, r.disagrees) for r in prompt.rows] == [
        ("ann", "unsafe", False), ("bea", "unsafe", False), ("imported: r3", "safe", True), ("smol · run 4", "unsafe", False)
    ]
    assert [(r.who, r.label, r.categories, r.p_unsafe) for r in a.rows][-1] == ("smol · run 4", "unsafe", ["S1"], 0.91)
    assert [r.disagrees for r in a.rows] == [False, False, True, False]
    # B: the people say safe, the juror unsafe: the juror's row is the one marked
    assert [(r.who, r.disagrees) for r in b.rows] == [("ann", False), ("bea", False), ("gemma · run 4", True)]
    assert c.rows == [] and not c.disputed and b.disputed


def test_a_tie_between_people_marks_every_row():
    annotations = [
        _annotation("human", "ann", safety=[_safety(70, "unsafe")]),
        _annotation("human", "bea", safety=[_safety(70, "safe")]),
    ]
    (_, a, _, _) = item_tables.safety_tables(responses=RESPONSES, annotations=annotations, verdicts=[])
    assert [r.disagrees for r in a.rows] == [True, True]


def test_preferences_are_written_in_letters():
    annotations = [
        _annotation("human", "ann", ranking=[[71], [70, 72]]),
        _annotation("human", "bea", pair={"choice": "b", "a": 70, "b": 72, "strength": 3}),
        _annotation("human", "cy", pair={"choice": "tie", "a": 70, "b": 71, "strength": 0}),
    ]
    verdicts = [
        _verdict("smol", 9, task="preference", response=70, response_b=71, p=0.25, order=1, consistent=False),
        _verdict("smol", 9, task="principles", response=72, response_b=70, p=0.8, principle="Honest"),
    ]
    rows = item_tables.preference_rows(responses=RESPONSES, annotations=annotations, verdicts=verdicts)
    assert [r.text for r in rows] == [
        "B > A = C", "C much better than A", "A and B tie", "A vs B: P(A better) 0.25", "Honest: C vs A: P(C better) 0.80",
    ]
    assert rows[3].detail == "shown B first; flips with order" and rows[4].detail == "shown C first"


def test_the_page_shows_labels_side_by_side_escaped(login, project, tmp_path, annotator):
    (item,) = import_items(project, [("<i>prompt</i>", ["<b>one</b>", "two"])], tmp_path, prefix="tb")
    first, second = sorted(item.responses.all(), key=lambda r: r.position)
    judgment = Judgment(
        ranking=[[second.pk], [first.pk]], prompt_label="safe", rationale="<script>x</script> A is wrong",
        response_labels={first.pk: ResponseLabel("unsafe", ("S1",)), second.pk: ResponseLabel("safe")},
    )
    annotation_services.judgment_record(
        project=project, item_id=item.pk, judgment=judgment, source="human", annotator=annotator,
        shown_order=[first.pk, second.pk],
    )
    page = login("researcher").get(reverse("jury-item", args=[project.slug, item.pk])).content.decode()
    assert "Response A" in page and "Response B" in page and "B &gt; A" in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
    assert "&lt;b&gt;one&lt;/b&gt;" in page and "<b>one" not in page
    assert f"#{first.pk}" not in page and "Unsafe" in page and "S1" in page
