"""Machine raters recorded through ``annotation``: per-juror / per-guard annotation rows
(``services.machine_rater_record``), the principle-specific preferences p_i
(``services.principle_preferences_record``) and the discretion inputs the metrics read from them
(``annotation.metrics.selectors.discretion_inputs``). Built with the real services; the expected
signs are written out by hand from what each rater stored."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from annotation import services
from annotation.metrics.selectors import discretion_inputs, project_ratings
from annotation.models import Annotation, PrinciplePreference
from annotation.services import PreferenceIn
from annotation.workbench.judgments import Judgment
from annotation.workbench.services import queue, submissions
from tests.annotation.workbench_fixtures import make_annotators, make_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def pairs(project, tmp_path):
    """Three items of two responses each; returns [(item id, first response id, second response id)]."""
    items = make_items(project, tmp_path, 3, responses=2, prefix="d")
    return [(it.pk, *it.responses.order_by("position").values_list("pk", flat=True)) for it in items]


def _principles(project, n=3) -> list[int]:
    return list(project.principle_set.principles.order_by("order", "code").values_list("pk", flat=True)[:n])


def _record_panel(project, pairs, signs, *, jury="default", run=1, flip=False):
    """The panel's p_i of ``signs`` (rows x principles, +1 = the item's first response); ``flip``
    stores each pair the other way round (b, a) with the sign turned, which means the same."""
    principles = _principles(project, len(signs[0]))
    rows = []
    for (item_id, r0, r1), row in zip(pairs, signs):
        for pid, sign in zip(principles, row):
            a, b, s = (r1, r0, None if sign is None else -sign) if flip else (r0, r1, sign)
            prob_a = 0.5 if s is None else (0.8 if s > 0 else 0.1)
            rows.append(PreferenceIn(item_id=item_id, pair_a_id=a, pair_b_id=b, principle_id=pid, prob_a=prob_a,
                                     prob_b=0.5 if s is None else 0.9 - prob_a, prob_na=0.1 if s is not None else 0.0,
                                     preference=s))
    return services.principle_preferences_record(project=project, preferences=rows, source="jury",
                                                 rater=f"run{run}", source_detail=jury)


def test_principle_preferences_are_stored_checked_and_append_only(project, other_project, pairs):
    stored = _record_panel(project, pairs[:1], [[1, -1, None]])
    assert [p.preference for p in stored] == [1, -1, None]
    assert PrinciplePreference.objects.filter(project=project, source="jury", rater="run1").count() == 3
    with pytest.raises(Exception, match="append-only"):
        stored[0].save()
    (item_id, r0, r1), pid = pairs[0], _principles(project, 1)[0]
    # the same rater twice on the same pair and principle: refused by the database
    with pytest.raises(IntegrityError), transaction.atomic():
        services.principle_preferences_record(
            project=project, source="jury", rater="run1",
            preferences=[PreferenceIn(item_id=item_id, pair_a_id=r0, pair_b_id=r1, principle_id=pid, prob_a=1, prob_b=0)])
    # a pair that is not the item's, a foreign project, an unknown sign or source: refused before writing
    other_item = pairs[1]
    bad = [
        dict(project=project, preferences=[PreferenceIn(item_id, r0, other_item[1], pid, 0.6, 0.4)]),
        dict(project=other_project, preferences=[PreferenceIn(item_id, r0, r1, pid, 0.6, 0.4)]),
        dict(project=project, preferences=[PreferenceIn(item_id, r0, r1, pid, 0.6, 0.4, preference=0)]),
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            services.principle_preferences_record(source="jury", rater="run2", **kwargs)
    with pytest.raises(ValueError):
        services.principle_preferences_record(project=project, source="human", rater="x",
                                              preferences=[PreferenceIn(item_id, r0, r1, pid, 0.6, 0.4)])
    assert PrinciplePreference.objects.filter(rater="run2").count() == 0


def test_machine_rater_rows_are_named_raters_of_their_own(project, pairs):
    item_id, r0, r1 = pairs[0]
    judgment = Judgment(pair_choice="b", pair_strength=2, ranking=[[r1], [r0]])
    ann = services.machine_rater_record(project=project, item_id=item_id, judgment=judgment, source="juror",
                                        rater="run7:smol", name="smol/smollm2-135m-instruct", shown_order=[r0, r1])
    assert (ann.source, ann.rater, ann.source_detail, ann.annotator) == ("juror", "run7:smol",
                                                                          "smol/smollm2-135m-instruct", None)
    # one record per item and rater id
    with pytest.raises(IntegrityError), transaction.atomic():
        services.machine_rater_record(project=project, item_id=item_id, judgment=judgment, source="juror",
                                      rater="run7:smol", name="smol", shown_order=[r0, r1])
    # a juror row needs its rater id (the database says so too); people's sources are not machine raters
    with pytest.raises(ValueError):
        services.machine_rater_record(project=project, item_id=item_id, judgment=judgment, source="human",
                                      rater="x", name="x", shown_order=[r0, r1])
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation(project=project, item_id=item_id, source="guard").save(force_insert=True)
    ratings = project_ratings(project=project)
    assert ratings.raters == {"juror:smol/smollm2-135m-instruct": "juror"}


def test_discretion_inputs_orient_every_sign_on_the_pair(project, pairs):
    # p_i of the panel, +1 = the item's first response (the lower id); the second item's pairs are
    # stored the other way round, which must read the same
    signs = [[1, -1, None], [1, 1, None], [None, None, None]]
    # an older run of another jury: not chosen by default (the newest jury's run is)
    (i0, a0, b0) = pairs[0]
    services.principle_preferences_record(
        project=project, source="jury", rater="run0", source_detail="old",
        preferences=[PreferenceIn(i0, a0, b0, _principles(project, 1)[0], 0.1, 0.9, preference=-1)])
    _record_panel(project, pairs[:1], signs[:1])
    _record_panel(project, pairs[1:2], signs[1:2], flip=True)
    _record_panel(project, pairs[2:], signs[2:])
    # people: ann0 prefers the first response of item 0 and marks "principles conflicted", the
    # second of item 1 by a ranking; the jury's decision and a juror by pairwise choices
    users = make_annotators(project, 1)
    choices = {pairs[0][0]: ("a", True), pairs[1][0]: ("rank-b", False), pairs[2][0]: ("tie", False)}
    while (a := queue.queue_next(project=project, annotator=users[0])) is not None:
        shown = a.shown_order
        item = next(p for p in pairs if p[0] == a.item_id)
        kind, conflicted = choices[a.item_id]
        first, second = item[1], item[2]
        if kind == "rank-b":
            ranking = [[second], [first]]
        elif kind == "tie":
            ranking = [[first, second]] if shown[0] == first else [[second, first]]
        else:
            ranking = [[first], [second]]
        submissions.annotation_submit(project=project, annotator=users[0], item_id=a.item_id,
                                      judgment=Judgment(ranking=ranking, principles_conflicted=conflicted,
                                                        prompt_label="safe",
                                                        response_labels=_safe(first, second)))
    services.judgment_record(project=project, item_id=pairs[0][0], source="jury", source_detail="default",
                             judgment=Judgment(pair_choice="b", pair_strength=1), shown_order=[pairs[0][2], pairs[0][1]],
                             store_shown_order=False)
    services.machine_rater_record(project=project, item_id=pairs[1][0], source="juror", rater="run1:smol",
                                  name="smol", judgment=Judgment(pair_choice="a", pair_strength=3),
                                  shown_order=[pairs[1][1], pairs[1][2]])
    got = discretion_inputs(project=project)
    assert got.jury == "jury:default" and got.juries == ["jury:default", "jury:old"]
    assert got.rows == sorted(pairs)
    assert got.principles == list(project.principle_set.principles.order_by("order", "code")
                                  .values_list("code", flat=True))
    width = len(got.principles)
    assert got.p == [row + [None] * (width - 3) for row in signs]
    assert got.prob_a[0][:2] == [0.8, 0.1] and got.prob_a[1][:2] == [0.8, 0.8]
    # the jury's "b" on the pair shown (second, first) is the first response: +1
    assert got.annotators == {"ann0": [1.0, -1.0, None], "jury:default": [1.0, None, None],
                              "juror:smol": [None, 1.0, None]}
    assert got.kinds == {"ann0": "human", "jury:default": "jury", "juror:smol": "juror"}
    assert sorted(got.marks) == [("ann0", 0, True), ("ann0", 1, False), ("ann0", 2, False)]
    # another jury chosen by name
    old = discretion_inputs(project=project, jury="jury:old")
    assert old.rows == [pairs[0]] and old.p[0][0] == -1.0


def test_no_preferences_no_rows(project, pairs):
    got = discretion_inputs(project=project)
    assert (got.rows, got.p, got.annotators, got.jury) == ([], [], {}, "")


def _safe(*rids):
    from annotation.workbench.judgments import ResponseLabel

    return {rid: ResponseLabel(label="safe") for rid in rids}


def test_discretion_block_by_hand():
    """Rows: 0 Conflict (p = +1, -1), 1 Consensus +1, 2 Consensus -1, 3 Indifference."""
    from annotation.metrics.report import discretion_block
    from annotation.metrics.selectors import DiscretionInputs

    inputs = DiscretionInputs(
        jury="jury:x", juries=["jury:x"], rows=[(1, 10, 11), (2, 20, 21), (3, 30, 31), (4, 40, 41)],
        principles=["p0", "p1", "p2"],
        p=[[1, -1, None], [1, 1, None], [-1, None, None], [None, None, None]],
        annotators={"alice": [1, 1, -1, 1], "bob": [-1, -1, -1, None], "jury:x": [1, -1, 1, None]},
        kinds={"alice": "human", "bob": "human", "jury:x": "jury"},
        marks=[("alice", 0, True), ("alice", 1, False), ("bob", 0, False), ("bob", 2, True)],
    )
    d = discretion_block(inputs, n_boot=0, seed=0)
    assert d["classes"] == {"Consensus": 2, "Conflict": 1, "Indifference": 1}
    # the people's majority: rows 0 and 1 tied (None), row 2 -1, row 3 alice's +1
    assert d["annotators"] == ["alice", "bob", "jury:x", "consensus"] and d["reference"] == "consensus"
    da = {name: d["annotator"][name]["da"] for name in d["annotators"]}
    # against the consensus sign on rows 1 (+1) and 2 (-1): alice none, bob row 1, the jury both
    assert da == {"alice": 0.0, "bob": 0.5, "jury:x": 1.0, "consensus": 0.0}
    assert d["annotator"]["consensus"]["n_rows"] == 2 and d["annotator"]["alice"]["n_rows"] == 4
    # alice on the one conflict row sides with p0 against p1: PS(0, 1) = 1, PS(1, 0) = 0, n = 1;
    # w*: p0 wins every conflict it is in (+inf), p1 loses (-inf), p2 never conflicts (-inf)
    alice = d["annotator"]["alice"]
    assert alice["ps"][0][1] == 1.0 and alice["ps"][1][0] == 0.0 and alice["n"][0][1] == alice["n"][1][0] == 1
    assert alice["w"] == ["inf", "-inf", "-inf"]
    assert d["annotator"]["bob"]["w"] == ["-inf", "inf", "-inf"]
    capture = {c["annotator"]: c for c in d["conflict_capture"]}
    assert (capture["alice"]["marked_share"], capture["alice"]["recall"], capture["alice"]["precision"]) == (0.5, 1, 1)
    assert (capture["bob"]["marked_share"], capture["bob"]["recall"], capture["bob"]["precision"]) == (0.5, 0, 0)
    assert discretion_block(None, n_boot=10, seed=0)["n_rows"] == 0
