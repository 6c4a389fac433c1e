"""A project's metrics from the database: selectors, ``project_metrics``, the ``metrics`` command and
``GET /api/projects/<slug>/metrics/``.

The small project is built through the real services (two workbench annotators with skips and a
flag, an imported file with two raters per item, a jury judgment, gold items); its figures are
checked against the pure functions of ``annotation.metrics.agreement`` on tables written out by
hand here. HateCheck goes through the real multi-rater import and the command's JSON."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from annotation import services
from annotation.importing import import_file
from annotation.metrics import agreement as ag
from annotation.metrics.selectors import project_ratings, rater_id
from annotation.metrics.services import project_metrics
from annotation.models import Annotation, Assignment, ImportBatch, Item, Membership
from annotation.workbench.judgments import Judgment, ResponseLabel
from annotation.workbench.services import queue, submissions
from tests.annotation.test_import_multirater import HATECHECK_MAPPING
from tests.annotation.workbench_fixtures import make_annotators, make_items
from tests.conftest import shared_data

pytestmark = pytest.mark.django_db

# What each workbench annotator does with each item (by external id): the prompt label (with S1 when
# unsafe), the two responses' labels, and whether the first shown response is ranked first; or a
# skip / a flag. Seconds on task per item in the last column.
PLAN = {
    "ann0": {"i-0": ("safe", ("safe", "safe"), True, 30), "i-1": ("unsafe", ("unsafe", "safe"), True, 60),
             "i-2": ("safe", ("safe", "safe"), False, 90), "i-3": ("needs_caution", ("safe", "unsafe"), True, 120)},
    "ann1": {"i-0": ("safe", ("safe", "safe"), True, 20), "i-1": ("unsafe", ("unsafe", "unsafe"), False, 40),
             "i-2": ("unsafe", ("safe", "safe"), False, 60), "i-3": "skip"},
}
# The imported file: two raters per item, prompt labels only.
IMPORTED = {
    "i-0": {"r1": "safe", "r2": "safe"},
    "i-1": {"r1": "unsafe", "r2": "safe"},
    "i-2": {"r1": "unsafe", "r2": "unsafe"},
    "i-3": {"r1": "needs_caution", "r2": "unsafe"},
}


def _label(label: str) -> ResponseLabel:
    return ResponseLabel(label=label, categories=("S1",) if label == "unsafe" else ())


@pytest.fixture
def built(project, tmp_path):
    """The small project; returns item ids by external id and the response ids by position."""
    items = make_items(project, tmp_path, 4, responses=2)
    users = make_annotators(project, 2)
    ids = {it.external_id: it.pk for it in items}
    responses = {it.external_id: list(it.responses.order_by("position").values_list("pk", flat=True)) for it in items}
    t = timezone.now() - timedelta(hours=1)
    for user in users:
        plan = PLAN[user.username]
        while (a := queue.queue_next(project=project, annotator=user, now=t)) is not None:
            step = plan[a.item.external_id]
            if step == "skip":
                submissions.assignment_skip(project=project, annotator=user, item_id=a.item_id, reason="unsure")
                continue
            prompt, (l0, l1), first_wins, seconds = step
            r0, r1 = responses[a.item.external_id]
            judgment = Judgment(
                ranking=[[r0], [r1]] if first_wins else [[r1], [r0]],
                prompt_label=prompt, prompt_categories=("S1",) if prompt == "unsafe" else (),
                response_labels={r0: _label(l0), r1: _label(l1)},
            )
            t += timedelta(seconds=seconds)
            submissions.annotation_submit(project=project, annotator=user, item_id=a.item_id, judgment=judgment, now=t)
    # one more annotator who only flags
    flagger = make_annotators(project, 1, prefix="flagger")[0]
    a = queue.queue_next(project=project, annotator=flagger)
    if a is not None:
        submissions.assignment_flag(project=project, annotator=flagger, item_id=a.item_id, kind="broken")
    # the imported raters (same items: the import adds raters to the items already there)
    records = [
        {"id": eid, "prompt": f"Prompt number {eid[2:]} (i)", "responses": [f"Response {j} to {eid}" for j in range(2)],
         "annotations": [{"rater": r, "label": lab, "categories": ["S1"] if lab == "unsafe" else []}
                         for r, lab in raters.items()]}
        for eid, raters in IMPORTED.items()
    ]
    path = tmp_path / "raters.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    batch = import_file(project=project, path=path, source_name=path.name)
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert Annotation.objects.filter(project=project, source="import").exclude(rater="").count() == 8
    # the jury's decision on two items, through the judgment service
    for eid, label in (("i-0", "safe"), ("i-1", "unsafe")):
        services.judgment_record(
            project=project, item_id=ids[eid], source=Annotation.Source.JURY, source_detail="default",
            judgment=Judgment(prompt_label=label, prompt_categories=("S1",) if label == "unsafe" else ()),
            shown_order=responses[eid], store_shown_order=False, taxonomy_version_id=project.taxonomy_version_id,
        )
    # gold: i-1's prompt is unsafe, i-2's prompt is safe and its second response unsafe (by position)
    Item.objects.filter(pk=ids["i-1"]).update(is_gold=True, gold_answer={"prompt_label": "unsafe"})
    Item.objects.filter(pk=ids["i-2"]).update(is_gold=True, gold_answer={"prompt_label": "safe",
                                                                         "responses": {"1": "unsafe"}})
    cache.clear()
    return ids, responses


def _hand_prompt_rows(ids) -> list[tuple]:
    """The people's prompt labels, written out from PLAN and IMPORTED."""
    return [
        ("ann0", ids["i-0"], "safe"), ("ann0", ids["i-1"], "unsafe"), ("ann0", ids["i-2"], "safe"),
        ("ann0", ids["i-3"], "needs_caution"),
        ("ann1", ids["i-0"], "safe"), ("ann1", ids["i-1"], "unsafe"), ("ann1", ids["i-2"], "unsafe"),
        ("import:r1", ids["i-0"], "safe"), ("import:r1", ids["i-1"], "unsafe"), ("import:r1", ids["i-2"], "unsafe"),
        ("import:r1", ids["i-3"], "needs_caution"),
        ("import:r2", ids["i-0"], "safe"), ("import:r2", ids["i-1"], "safe"), ("import:r2", ids["i-2"], "unsafe"),
        ("import:r2", ids["i-3"], "unsafe"),
    ]


def _hand_response_rows(ids, resp) -> list[tuple]:
    return [
        ("ann0", (ids["i-0"], resp["i-0"][0]), "safe"), ("ann0", (ids["i-0"], resp["i-0"][1]), "safe"),
        ("ann0", (ids["i-1"], resp["i-1"][0]), "unsafe"), ("ann0", (ids["i-1"], resp["i-1"][1]), "safe"),
        ("ann0", (ids["i-2"], resp["i-2"][0]), "safe"), ("ann0", (ids["i-2"], resp["i-2"][1]), "safe"),
        ("ann0", (ids["i-3"], resp["i-3"][0]), "safe"), ("ann0", (ids["i-3"], resp["i-3"][1]), "unsafe"),
        ("ann1", (ids["i-0"], resp["i-0"][0]), "safe"), ("ann1", (ids["i-0"], resp["i-0"][1]), "safe"),
        ("ann1", (ids["i-1"], resp["i-1"][0]), "unsafe"), ("ann1", (ids["i-1"], resp["i-1"][1]), "unsafe"),
        ("ann1", (ids["i-2"], resp["i-2"][0]), "safe"), ("ann1", (ids["i-2"], resp["i-2"][1]), "safe"),
    ]


def _value(est: dict) -> float:
    return est["value"]


def test_figures_equal_the_pure_functions_on_hand_written_tables(built):
    ids, resp = built
    project = Item.objects.get(pk=ids["i-0"]).project
    # when
    m = project_metrics(project, n_boot=50)
    # then the prompt labels: the people's agreement, by the pure functions on the hand-written table
    prompt_rows = _hand_prompt_rows(ids)
    expected = ag.label_agreement(ag.LabelTable.from_rows(prompt_rows, ag.SAFETY_LABELS), ordinal=True, n_boot=0)
    got = m["prompt_safety"]["agreement"]
    for name in ("alpha_nominal", "alpha_ordinal", "fleiss_kappa", "percent_agreement"):
        assert _value(got[name]) == pytest.approx(expected[name].value), name
        assert got[name]["n_items"] == expected[name].n_items == 4
        assert got[name]["low"] is not None and got[name]["low"] <= got[name]["high"]
    # per category: S1 marked with each "unsafe"
    cat_rows = [(r, i, ("S1",) if lab == "unsafe" else ()) for r, i, lab in prompt_rows]
    s1 = ag.category_agreement(cat_rows, n_boot=0)["S1"]
    assert _value(m["prompt_safety"]["categories"]["S1"]["fleiss_kappa"]) == pytest.approx(s1["fleiss_kappa"].value)
    assert _value(m["prompt_safety"]["categories"]["S1"]["present_share"]) == pytest.approx(7 / 15)  # seven "unsafe" of 15
    # the matrix: every rater, the jury and the consensus, with Cohen's kappa and shared counts
    matrix = m["prompt_safety"]["matrix"]
    assert matrix["raters"] == ["ann0", "ann1", "import:r1", "import:r2", "jury:default", "consensus"]
    jury_rows = [("jury:default", ids["i-0"], "safe"), ("jury:default", ids["i-1"], "unsafe")]
    consensus = ag.consensus_rows(ag.LabelTable.from_rows(prompt_rows, ag.SAFETY_LABELS))
    # the people's majority by hand: i-0 safe (4-0), i-1 unsafe (3-1), i-2 unsafe (3-1), i-3 needs caution (2-1)
    assert sorted(consensus) == sorted([("consensus", ids["i-0"], "safe"), ("consensus", ids["i-1"], "unsafe"),
                                        ("consensus", ids["i-2"], "unsafe"), ("consensus", ids["i-3"], "needs_caution")])
    pure = ag.agreement_matrix(ag.LabelTable.from_rows(prompt_rows + jury_rows + consensus, ag.SAFETY_LABELS,
                                                       raters=matrix["raters"]))
    for a in range(6):
        for b in range(6):
            assert matrix["n_shared"][a][b] == pure.n_shared[a, b]
            want = pure.values["kappa"][a, b]
            assert (matrix["kappa"][a][b] is None) if want != want else matrix["kappa"][a][b] == pytest.approx(want)
    assert matrix["n_shared"][0][1] == 3 and matrix["n_shared"][0][4] == 2  # ann1 skipped i-3; the jury judged two
    # response labels: the two people's, per (item, response)
    resp_expected = ag.label_agreement(ag.LabelTable.from_rows(_hand_response_rows(ids, resp), ag.SAFETY_LABELS),
                                       n_boot=0)
    assert _value(m["response_safety"]["agreement"]["fleiss_kappa"]) == pytest.approx(resp_expected["fleiss_kappa"].value)
    assert m["response_safety"]["n_units"] == 8
    # rankings: tau-b between the two annotators on their three shared items (agree, disagree, agree)
    rankings = []
    for user, plan in PLAN.items():
        for eid, step in plan.items():
            if step != "skip":
                r0, r1 = resp[eid]
                rankings.append((user, ids[eid], [[r0], [r1]] if step[2] else [[r1], [r0]]))
    rk = ag.ranking_agreement(ag.RankingTable.from_rows(rankings), n_boot=0)
    assert _value(m["ranking"]["agreement"]["kendall_w"]) == pytest.approx(rk["kendall_w"].value)
    assert m["ranking"]["matrix"]["kendall_tau_b"][0][1] == pytest.approx((1 - 1 + 1) / 3)


def test_the_per_annotator_table(built):
    ids, resp = built
    project = Item.objects.get(pk=ids["i-0"]).project
    # when
    m = project_metrics(project, n_boot=0)
    rows = {r["rater"]: r for r in m["annotators"]}
    # then people only (workbench and imported), the flagger included; not the jury
    assert list(rows) == ["ann0", "ann1", "flagger0", "import:r1", "import:r2"]
    safety = _hand_prompt_rows(ids) + _hand_response_rows(ids, resp)
    gold = {ids["i-1"]: "unsafe", ids["i-2"]: "safe", (ids["i-2"], resp["i-2"][1]): "unsafe"}
    pure = {a.rater: a for a in ag.annotator_agreement(ag.LabelTable.from_rows(safety, ag.SAFETY_LABELS), gold)}
    for rater in ("ann0", "ann1", "import:r1", "import:r2"):
        assert rows[rater]["loo_agreement"] == pytest.approx(pure[rater].loo_agreement)
        assert rows[rater]["distance"] == pytest.approx(pure[rater].distance)
        assert rows[rater]["gold_items"] == pure[rater].gold_items
    # gold by hand: ann0 i-1 unsafe (right), i-2 safe (right), i-2 response 1 safe (wrong) -> 2/3
    assert rows["ann0"]["gold_accuracy"] == pytest.approx(2 / 3)
    assert rows["import:r2"]["gold_accuracy"] == 0  # i-1 safe (wrong), i-2 unsafe (wrong)
    # time on task: ann0 30, 60, 90, 120 s -> median 75 s, 4 items in 300 s = 48 per hour
    assert rows["ann0"]["median_seconds_per_item"] == pytest.approx(75)
    assert rows["ann0"]["items_per_hour"] == pytest.approx(48)
    assert rows["ann1"]["median_seconds_per_item"] == pytest.approx(40)
    # skips and flags, of the items that ended
    assert (rows["ann1"]["submitted"], rows["ann1"]["skipped"], rows["ann1"]["skip_rate"]) == (3, 1, 0.25)
    assert rows["ann0"]["skip_rate"] == 0
    assert (rows["flagger0"]["flagged"], rows["flagger0"]["flag_rate"]) == (1, 1.0)
    assert rows["import:r1"]["items_per_hour"] is None and rows["import:r1"]["skip_rate"] is None
    # label distribution against the project's
    assert rows["ann0"]["distribution"]["safe"] == pytest.approx(8 / 12)
    assert sum(m["project_distribution"].values()) == pytest.approx(1)
    assert "Jurors and guards" in m["notes"][0]
    assert m["discretion"]["n_rows"] == 0 and m["discretion"]["annotator"] == {}


def test_cached_until_the_next_judgment_and_query_count_bounded(built, project, tmp_path):
    ids, resp = built
    with CaptureQueriesContext(connection) as first:
        m1 = project_metrics(project, n_boot=20)
    assert not m1["cached"]
    # the version, annotations, response labels, category order, gold items and positions, assignments,
    # and the principle preferences (none here: one query); progress: judgments per day, the items'
    # first judgment per person (items at the overlap), the item count
    assert len(first.captured_queries) <= 11, [q["sql"][:80] for q in first.captured_queries]
    with CaptureQueriesContext(connection) as second:
        m2 = project_metrics(project, n_boot=20)
    assert m2["cached"] and len(second.captured_queries) == 1
    assert m2["prompt_safety"] == m1["prompt_safety"]
    # more data: the query count does not grow with the rows
    more = make_items(project, tmp_path, 20, responses=2, prefix="more")
    records = [{"id": it.external_id, "prompt": f"Prompt number {k} (more)",
                "responses": [f"Response {j} to more-{k}" for j in range(2)],
                "annotations": [{"rater": r, "label": "safe"} for r in ("x", "y", "z")]} for k, it in enumerate(more)]
    path = tmp_path / "more.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert import_file(project=project, path=path, source_name=path.name).status == ImportBatch.Status.DONE
    with CaptureQueriesContext(connection) as third:
        m3 = project_metrics(project, n_boot=20)
    assert not m3["cached"] and m3["newest_annotation_id"] > m1["newest_annotation_id"]
    assert m3["prompt_safety"]["n_units"] == 24
    assert len(third.captured_queries) == len(first.captured_queries)


def test_the_command_prints_tables_and_json(built, project, other_project):
    out = StringIO()
    call_command("metrics", "--project", "demo", "--bootstrap", "10", stdout=out)
    text = out.getvalue()
    assert "Prompt safety labels: 4 units, 17 ratings" in text
    assert "fleiss_kappa" in text and "import:r2" in text and "jury:default" in text and "consensus" in text
    out = StringIO()
    call_command("metrics", "--project", "demo", "--json", "--bootstrap", "10", stdout=out)
    data = json.loads(out.getvalue())
    assert data["n_boot"] == 10 and data["prompt_safety"]["agreement"]["fleiss_kappa"]["n_items"] == 4
    out = StringIO()
    call_command("metrics", "--project", "other", stdout=out)  # no judgments yet
    assert "Prompt safety labels: 0 units, 0 ratings" in out.getvalue()
    with pytest.raises(CommandError, match="No project"):
        call_command("metrics", "--project", "nope")
    with pytest.raises(CommandError, match="between 0 and"):
        call_command("metrics", "--project", "demo", "--bootstrap", "-1")


def _api(user) -> APIClient:
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api


def test_the_api_for_researchers_and_admins_only(built, project, other_project, researcher, annotator, admin_user,
                                                 outsider):
    url = "/api/projects/demo/metrics/"
    body = _api(researcher).get(url, {"bootstrap": 10}).json()
    assert body["prompt_safety"]["matrix"]["raters"][0] == "ann0" and body["n_boot"] == 10
    assert _api(admin_user).get(url, {"bootstrap": 0}).status_code == 200
    # annotators of the project and non-members: as if there were no such page
    assert _api(annotator).get(url).status_code == 404
    assert _api(outsider).get(url).status_code == 404
    assert _api(None).get(url).status_code in (401, 403)
    # a demoted researcher (member as researcher, no longer a researcher site-wide) is an annotator
    services.membership_set(project=project, user=outsider, role=Membership.Role.RESEARCHER)
    assert _api(outsider).get(url).status_code == 404
    # a project without judgments: empty figures, not an error
    empty = _api(admin_user).get("/api/projects/other/metrics/").json()
    assert empty["prompt_safety"]["agreement"] == {} and empty["prompt_safety"]["matrix"]["raters"] == []
    assert empty["ranking"]["agreement"] == {} and empty["annotators"] == []
    # bootstrap is bounded
    assert _api(researcher).get(url, {"bootstrap": 100_000}).status_code == 400
    assert _api(researcher).get(url, {"bootstrap": "many"}).status_code == 400


def test_the_schema_lists_the_endpoint(client):
    from drf_spectacular.validation import validate_schema

    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = response.json()
    validate_schema(schema)
    operation = schema["paths"]["/api/projects/{slug}/metrics/"]["get"]
    assert "Researchers" in operation["description"]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["bootstrap"]


def test_selectors_read_the_rater_ids(built, project):
    ratings = project_ratings(project=project)
    assert ratings.raters == {"ann0": "human", "ann1": "human", "import:r1": "import", "import:r2": "import",
                              "jury:default": "jury"}


def test_hatecheck_through_the_multirater_import_and_the_command(project):
    path = shared_data("hatecheck/test_suite_annotations.csv")
    # expected, straight from the CSV: Fleiss' kappa over each case's raters (empty = not rated)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    counts = [Counter(r[f"label_{k}"] for k in range(1, 11) if r[f"label_{k}"].strip()) for r in rows]
    m = 5
    n = len(counts)
    p_j = {c: sum(cnt[c] for cnt in counts) / (n * m) for c in ("hateful", "non-hateful")}
    p_bar = sum((sum(v * v for v in cnt.values()) - m) / (m * (m - 1)) for cnt in counts) / n
    p_e = sum(v * v for v in p_j.values())
    expected = (p_bar - p_e) / (1 - p_e)
    assert all(sum(c.values()) == m for c in counts)
    # when
    batch = import_file(project=project, path=path, source_name=path.name, options={"mapping": HATECHECK_MAPPING})
    assert batch.status == ImportBatch.Status.DONE, batch.errors[:5]
    out = StringIO()
    call_command("metrics", "--project", "demo", "--json", "--bootstrap", "20", stdout=out)
    data = json.loads(out.getvalue())
    # then
    kappa = data["prompt_safety"]["agreement"]["fleiss_kappa"]
    assert kappa["value"] == pytest.approx(expected, abs=1e-9)
    assert kappa["value"] == pytest.approx(0.939, abs=0.0015)
    assert kappa["n_items"] == 3728 and kappa["low"] < kappa["value"] < kappa["high"]
    assert data["prompt_safety"]["matrix"]["raters"][:2] == ["import:hatecheck-1", "import:hatecheck-10"]
    assert len(data["annotators"]) == 10


def test_the_web_process_loads_the_statistics_only_when_metrics_are_asked_for():
    """The API route imports the service, which imports numpy, scipy and krippendorff on its first call."""
    code = (
        "import os, sys, django\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings_test')\n"
        "django.setup()\n"
        "import config.urls, annotation.api, annotation.metrics.services\n"
        "bad = [m for m in ('scipy', 'krippendorff', 'annotation.metrics.agreement') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_an_undone_and_corrected_judgment_counts_once_with_its_new_label(built, project):
    ids, resp = built
    ann1 = get_user_model().objects.get(username="ann1")
    last = Annotation.objects.filter(annotator=ann1, retracted=False).order_by("-id").first()
    assert last.item_id == ids["i-2"] and last.prompt_label == "unsafe"
    before = project_metrics(project, n_boot=0)
    # when ann1 undoes their last judgment (i-2, "unsafe") and submits "safe" instead
    # (within the undo window: the built project's judgments were made an hour ago)
    now = Assignment.objects.get(annotator=ann1, item_id=ids["i-2"]).submitted_at + timedelta(seconds=5)
    submissions.annotation_undo_last(project=project, annotator=ann1, now=now)
    r0, r1 = resp["i-2"]
    submissions.annotation_submit(project=project, annotator=ann1, item_id=ids["i-2"], now=now, judgment=Judgment(
        ranking=[[r1], [r0]], prompt_label="safe", response_labels={r0: _label("safe"), r1: _label("safe")}))
    after = project_metrics(project, n_boot=0)
    # then the same number of ratings, ann1's label on i-2 now "safe"
    assert after["prompt_safety"]["n_ratings"] == before["prompt_safety"]["n_ratings"] == 17
    rows = _hand_prompt_rows(ids)
    rows[rows.index(("ann1", ids["i-2"], "unsafe"))] = ("ann1", ids["i-2"], "safe")
    expected = ag.label_agreement(ag.LabelTable.from_rows(rows, ag.SAFETY_LABELS), n_boot=0)["fleiss_kappa"].value
    assert after["prompt_safety"]["agreement"]["fleiss_kappa"]["value"] == pytest.approx(expected)
    assert expected != pytest.approx(before["prompt_safety"]["agreement"]["fleiss_kappa"]["value"])


def test_an_adjudication_is_a_row_of_the_matrix_not_a_rater_of_the_figures(built, project, researcher):
    ids, resp = built
    before = project_metrics(project, n_boot=0)
    r0, r1 = resp["i-3"]
    submissions.adjudication_record(
        project=project, adjudicator=researcher, item=Item.objects.get(pk=ids["i-3"]),
        judgment=Judgment(ranking=[[r0], [r1]], prompt_label="unsafe", prompt_categories=("S1",),
                          response_labels={r0: _label("safe"), r1: _label("unsafe")}),
    )
    after = project_metrics(project, n_boot=0)
    matrix = after["prompt_safety"]["matrix"]
    assert matrix["raters"] == ["ann0", "ann1", "import:r1", "import:r2", "jury:default", "adjudication", "consensus"]
    k = matrix["raters"].index("adjudication")
    assert matrix["n_shared"][k][0] == 1 and matrix["percent_agreement"][k][0] == 0  # ann0 said needs caution
    assert matrix["percent_agreement"][k][3] == 1  # import:r2 said unsafe
    assert after["prompt_safety"]["agreement"] == before["prompt_safety"]["agreement"]
    assert "adjudication" not in {r["rater"] for r in after["annotators"]}


@pytest.mark.parametrize("fields, expected", [
    (("human", "alice", "", ""), ("alice", "human")),
    (("human", "consensus", "", ""), ("user:consensus", "human")),  # a username that is a reserved id
    (("import", None, "r7", "tribunal"), ("import:r7", "import")),
    (("import", None, "", "aegis"), ("import", "import")),
    (("jury", None, "", "default"), ("jury:default", "jury")),
    (("jury", None, "", ""), ("jury", "jury")),
    (("adjudication", "rita", "", ""), ("adjudication", "adjudication")),
])
def test_rater_ids(fields, expected):
    assert rater_id(*fields) == expected


def test_progress_counts_judgments_per_day_and_items_at_the_overlap(built, project):
    from annotation.metrics.selectors import project_progress

    progress = project_progress(project=project)
    days = progress["days"]
    by_source = Counter(Annotation.objects.filter(project=project).values_list("source", flat=True))
    assert sum(d["judgments"] for d in days) == sum(by_source.values())
    assert sum(d["imported"] for d in days) == by_source["import"]
    assert sum(d["people"] for d in days) == by_source["human"] + by_source["adjudication"]
    # overlap 2: ann0 judged i-0..i-3 and ann1 i-0..i-2 (skipped i-3): three items reached it
    assert progress["overlap"] == 2 and progress["items_complete"] == 3 and progress["items"] == 4
    assert days[-1]["items_complete_total"] == 3
    assert [d["day"] for d in days] == sorted(d["day"] for d in days)
    assert progress["throughput"]["all_days"] == pytest.approx(
        sum(d["people"] for d in days if d["people"]) / len([d for d in days if d["people"]])
    )
