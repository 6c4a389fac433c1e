"""A jury run leaves each juror's own answer in ``annotation`` (per-juror rows, per-juror and panel
p_i), the metrics read them as raters of their own, and no reader of judgments counts them:
exports' evidence and consensus, project counts, adjudication, the jury page's human labels.

The fake backend (deterministic, instant) judges; Celery runs eagerly in this process. The
per-juror labels are checked against the juror's stored verdicts, not against the code that wrote
them."""
from __future__ import annotations

import pytest

from annotation import selectors as annotation_selectors
from annotation import services as annotation_services
from annotation.judgments import Judgment, ResponseLabel
from annotation.metrics.services import project_metrics
from annotation.models import Annotation, Principle, PrinciplePreference, PrincipleSet, Project
from annotation.workbench.selectors import adjudication_detail
from annotation.workbench.services import queue, submissions
from exports.evidence import _chunks_orm, decide, iter_chunks
from exports.options import build_options
from jury import selectors as jury_selectors
from jury import services
from jury.models import JuryRun, Verdict
from tests.jury.conftest import fake_juror
from tests.jury.test_runs import _start, eager  # noqa: F401  (the eager fixture)


@pytest.fixture
def panel(db):
    return services.jury_create(
        name="pair-panel", jurors=[(fake_juror("fake-a"), 1.0), (fake_juror("fake-b", model="other"), 1.0)], rule="mean",
    )


def _small_principles(project, n=3) -> list[str]:
    small = PrincipleSet.objects.create(slug="small", name="Small")
    for p in project.principle_set.principles.order_by("order")[:n]:
        Principle.objects.create(principle_set=small, code=p.code, short=p.short, text=p.text, group=p.group,
                                 order=p.order)
    Project.objects.filter(pk=project.pk).update(principle_set=small)
    project.refresh_from_db()
    return list(small.principles.order_by("order", "code").values_list("code", flat=True))


def _annotate_all(project, annotator, conflicted_item: int):
    """The annotator ranks every item (the first response first) and labels it safe; marks
    "principles conflicted" on one item."""
    while (a := queue.queue_next(project=project, annotator=annotator)) is not None:
        first, second = a.item.responses.order_by("position").values_list("pk", flat=True)
        judgment = Judgment(ranking=[[first], [second]], prompt_label="safe",
                            response_labels={first: ResponseLabel("safe"), second: ResponseLabel("safe")},
                            principles_conflicted=a.item_id == conflicted_item)
        submissions.annotation_submit(project=project, annotator=annotator, item_id=a.item_id, judgment=judgment)


def _consensus(project):
    options = build_options({"format": "guard-aegis"})
    out = {}
    chunks = iter_chunks(project=project, options=options, prefetch=False)
    orm = list(_chunks_orm(project=project, options=options, size=100))
    for chunk, orm_chunk in zip(chunks, orm):
        for ev, orm_ev in zip(chunk, orm_chunk):
            decide(ev, options, {})
            out[ev.item_id] = (sorted(r.source for r in ev.records), sorted(r.source for r in orm_ev.records),
                               ev.prompt_safety, ev.safety_source)
    return out


def test_jury_runs_leave_juror_rows_and_p_i_that_only_metrics_read(
    eager, django_capture_on_commit_callbacks, project, items, panel, annotator
):
    codes = _small_principles(project)
    _annotate_all(project, annotator, conflicted_item=items[0].pk)
    # --- safety: each juror's own labels, named by run and juror
    run = _start(django_capture_on_commit_callbacks, project=project, jury=panel, task="safety")
    assert run.status == JuryRun.Status.DONE, run.errors
    rows = Annotation.objects.filter(project=project, source="juror").order_by("id")
    assert rows.count() == 2 * len(items)
    assert {(r.rater, r.source_detail) for r in rows} == {(f"run{run.pk}:fake-a", "fake-a/fake"),
                                                          (f"run{run.pk}:fake-b", "fake-b/other")}
    low, high = run.config["caution_low"], run.config["caution_high"]
    for verdict in Verdict.objects.filter(run=run, target__endswith=":prompt").select_related("juror"):
        row = rows.get(item_id=verdict.item_id, rater=f"run{run.pk}:{verdict.juror.name}")
        p = verdict.p_positive
        assert row.prompt_label == ("unsafe" if p >= high else "needs_caution" if p >= low else "safe")
        assert row.response_safety.count() == 2 and row.annotator is None
    # --- readers of judgments do not see them: exports (both read paths), counts, adjudication
    before = _consensus(project)
    counts = annotation_selectors.project_counts(project=project)
    detail = adjudication_detail(project, items[1].pk)
    human = list(jury_selectors.item_current_labels(item=items[1]))
    assert all(sources == orm == sorted(["human", "jury"]) for sources, orm, _, _ in before.values()), before
    assert counts.annotations == Annotation.objects.filter(project=project, source__in=["human", "jury"]).count()
    assert {a.source for a in detail.annotations} == {"human", "jury"}
    # one more juror row that disagrees with everyone changes none of them
    r0, r1 = items[1].responses.order_by("position").values_list("pk", flat=True)
    annotation_services.machine_rater_record(
        project=project, item_id=items[1].pk, source="guard", rater="run0:guard", name="guard/tiny",
        judgment=Judgment(prompt_label="unsafe", response_labels={r0: ResponseLabel("unsafe")}),
        shown_order=[r0, r1], taxonomy_version_id=project.taxonomy_version_id,
    )
    assert _consensus(project) == before
    assert annotation_selectors.project_counts(project=project) == counts
    assert len(adjudication_detail(project, items[1].pk).annotations) == len(detail.annotations)
    assert list(jury_selectors.item_current_labels(item=items[1])) == human
    item = annotation_selectors.item_list(project=project, with_annotation_counts=True).get(pk=items[1].pk)
    assert item.annotation_count == len(detail.annotations)
    # --- preference and principles: per-juror pair choices, panel and per-juror p_i
    pref = _start(django_capture_on_commit_callbacks, project=project, jury=panel, task="preference")
    principles = _start(django_capture_on_commit_callbacks, project=project, jury=panel, task="principles")
    assert pref.status == principles.status == JuryRun.Status.DONE
    assert Annotation.objects.filter(source="juror", rater=f"run{pref.pk}:fake-a").exclude(pair_choice="").count() == 3
    stored = PrinciplePreference.objects.filter(project=project)
    assert stored.filter(source="jury", rater=f"run{principles.pk}").count() == 3 * len(codes)
    assert stored.filter(source="juror", rater=f"run{principles.pk}:fake-b").count() == 3 * len(codes)
    # a juror's p_i are its own verdicts' (both orders averaged, A = the pair's first response)
    one = stored.filter(source="juror", rater=f"run{principles.pk}:fake-a").select_related("principle").first()
    verdicts = Verdict.objects.filter(run=principles, juror__name="fake-a", item=one.item, principle=one.principle)
    prob_a = sum((v.probs["A"] if v.order == 0 else v.probs["B"]) for v in verdicts) / 2
    assert one.prob_a == pytest.approx(prob_a, abs=1e-5)
    # --- the metrics: jurors and the guard are rows of the matrix; discretion reads annotation only
    m = project_metrics(project, n_boot=30, use_cache=False)
    matrix_raters = m["prompt_safety"]["matrix"]["raters"]
    assert {"bob_annotator", "juror:fake-a/fake", "juror:fake-b/other", "guard:guard/tiny",
            "jury:pair-panel", "consensus"} <= set(matrix_raters)
    kinds = {r["id"]: r["kind"] for r in m["raters"]}
    assert kinds["juror:fake-a/fake"] == "juror" and kinds["guard:guard/tiny"] == "guard"
    # the people's figures are the one person's: the machines are not in them
    assert m["prompt_safety"]["agreement"]["percent_agreement"]["n_items"] == 0
    d = m["discretion"]
    assert d["jury"] == "jury:pair-panel" and d["n_rows"] == 3 and d["principles"] == codes
    assert {"bob_annotator", "juror:fake-a/fake", "juror:fake-b/other", "jury:pair-panel"} <= set(d["annotators"])
    assert d["reference"] == "bob_annotator"
    assert sum(d["classes"].values()) == 3
    for name in d["annotators"]:
        a = d["annotator"][name]
        assert len(a["w"]) == len(a["rank"]) == len(codes) and 1 <= a["n_rows"] <= 3  # a tie is no preference
    assert d["annotator"]["bob_annotator"]["n_rows"] == 3
    assert len(d["dd"]) == len(d["annotators"]) and set(d["dd_reference"]) == set(d["annotators"])
    (capture,) = d["conflict_capture"]
    assert (capture["annotator"], capture["n_rows"]) == ("bob_annotator", 3)
    assert capture["marked_share"] == pytest.approx(1 / 3)
