"""The researcher's metrics page ``/projects/<slug>/metrics/``: who may open it, each section drawn from
a small real project (the one of ``test_metrics_project``, built through the services), escaping of
rater names, and the CSV / JSON downloads against ``project_metrics``'s dict."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache

from annotation import services
from annotation.metrics.services import MAX_BOOT, project_metrics
from annotation.models import Item, Membership
from annotation.views_metrics import interval_bar
from tests.annotation.test_metrics_project import built  # noqa: F401  (the fixture)
from tests.annotation.web_fixtures import (
    XSS_SCRIPT,
    add_human_annotation,
    client_for,
    import_records,
    personas,  # noqa: F401  (the fixture)
)

pytestmark = pytest.mark.django_db

URL = "/projects/demo/metrics/"


def _get(user, url=URL, **params):
    return client_for(user).get(url, params)


def _csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _num(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def test_who_may_open_it(project, personas, researcher, outsider):
    expected = {"admin": 200, "researcher": 200, "annotator": 404, "outsider": 404, "anonymous": 302}
    got = {name: _get(user, bootstrap=0).status_code for name, user in personas.items()}
    assert got == expected
    assert _get(None)["Location"].startswith("/login/")
    # a downloads is the page's: the same rule
    assert _get(personas["annotator"], download="metrics.json").status_code == 404
    # a demoted researcher (member as researcher, not a researcher site-wide) is an annotator
    services.membership_set(project=project, user=outsider, role=Membership.Role.RESEARCHER)
    assert _get(outsider).status_code == 404
    # the project page links to it for researchers only
    assert URL in client_for(researcher).get("/projects/demo/").content.decode()
    assert URL not in client_for(personas["annotator"]).get("/projects/demo/").content.decode()


def test_an_empty_project_renders_with_empty_sections(project, researcher):
    body = _get(researcher, bootstrap=0).content.decode()
    assert "No labels from two people yet" in body
    assert "Nobody has judged anything yet." in body
    assert "No rankings in this project." in body


def test_each_section_from_a_small_real_project(built, project, researcher):
    # when
    response = _get(researcher, bootstrap=30)
    body = response.content.decode()
    m = project_metrics(project, n_boot=30)
    # then the headline figures with their intervals, as the dict has them
    assert response.status_code == 200
    headline = body.split('data-testid="prompt_safety-headline"')[1].split("</table>")[0]
    for name, key in (("Krippendorff's α (nominal)", "alpha_nominal"), ("Fleiss' κ", "fleiss_kappa"),
                      ("Percent agreement", "percent_agreement")):
        est = m["prompt_safety"]["agreement"][key]
        assert name.replace("'", "&#x27;") in headline
        assert f"{est['value']:.3f}" in headline and f"[{est['low']:.3f}, {est['high']:.3f}]" in headline
    assert headline.count('class="ibar-range"') == 3
    # per category: S1 with its kappa
    cats = body.split('data-testid="prompt_safety-categories"')[1].split("</table>")[0]
    s1 = m["prompt_safety"]["categories"]["S1"]["fleiss_kappa"]
    assert "<code>S1</code>" in cats and f"{s1['value']:.3f}" in cats
    # the heatmap: every rater of the matrix, the shared count in each cell's title
    section = body.split('data-testid="prompt_safety"')[1].split("</section>")[0]
    assert '<svg class="heatmap"' in section
    raters = m["prompt_safety"]["matrix"]["raters"]
    assert raters == ["ann0", "ann1", "import:r1", "import:r2", "jury:default", "consensus"]
    titles = re.findall(r"<title>([^<]*shared unit[^<]*)</title>", section)
    assert len(titles) == len(raters) ** 2
    k01 = m["prompt_safety"]["matrix"]["kappa"][0][1]
    assert f"ann0 × ann1: Cohen&#x27;s κ {k01:.2f} on 3 shared units" in section
    assert any(t.startswith("ann0 × jury:default:") and "on 2 shared units" in t for t in titles)
    # the per-annotator table: one row each, with the figures of the dict
    table = body.split('data-testid="annotators-table"')[1].split("</table>")[0]
    rows = re.findall(r'<tr>\s*<td><span class="rater-name">([^<]+)</span>', table)
    assert rows == [r["rater"] for r in m["annotators"]] == ["ann0", "ann1", "flagger0", "import:r1", "import:r2"]
    ann0 = next(r for r in m["annotators"] if r["rater"] == "ann0")
    assert f"{ann0['loo_agreement']:.3f}" in table and "48.0" in table and "75 s" in table  # 48 items/hour, 75 s
    assert table.count('class="dist-safe"') >= 5
    # rankings: W and the tau-b heatmap
    ranking = body.split('data-testid="ranking"')[1].split("</section>")[0]
    w = m["ranking"]["agreement"]["kendall_w"]
    assert "Kendall&#x27;s W" in ranking and f"{w['value']:.3f}" in ranking and '<svg class="heatmap"' in ranking
    # the most disputed items, each linking to its adjudication page, in the dict's order
    disputed = body.split('data-testid="disputed"')[1].split("</section>")[0]
    links = re.findall(r'href="/annotate/demo/adjudicate/(\d+)/"', disputed)
    assert links and [int(x) for x in links] == [d["item"] for d in m["disputed"]]
    assert all(a["disagreement"] >= b["disagreement"] for a, b in zip(m["disputed"], m["disputed"][1:]))
    # progress: a bar per day, the items at the overlap
    progress = body.split('data-testid="progress"')[1].split("</section>")[0]
    assert progress.count('class="chart-bar"') == len(m["progress"]["days"]) >= 1
    assert f"{m['progress']['items_complete']} of {m['progress']['items']} item" in progress
    # when and whence: the first view computed them, the second reads the cache
    assert "freshly computed" in body and "Computed 20" in body and "30 bootstrap resamples" in body
    assert "from the cache" in _get(researcher, bootstrap=30).content.decode()


def test_bootstrap_is_bounded(project, researcher):
    assert _get(researcher, bootstrap=MAX_BOOT + 1).status_code == 400
    assert _get(researcher, bootstrap=-1).status_code == 400
    assert _get(researcher, bootstrap="many").status_code == 400
    assert _get(researcher, bootstrap=0).status_code == 200
    assert _get(researcher, download="secrets.csv").status_code == 404


def test_rater_names_are_escaped(project, researcher, tmp_path):
    # an imported rater and a workbench account whose names are markup
    records = [{"id": f"x-{i}", "prompt": f"Prompt {i}", "responses": ["a", "b"],
                "annotations": [{"rater": XSS_SCRIPT, "label": "unsafe", "categories": ["S1"]},
                                {"rater": "plain", "label": "safe"}]} for i in range(3)]
    import_records(project, tmp_path, records, name="raters.jsonl")
    evil = get_user_model().objects.create_user(username="<script>u</script>", password="pw-evil-1")
    evil.groups.add(Group.objects.get(name="annotator"))
    services.membership_set(project=project, user=evil, role=Membership.Role.ANNOTATOR)
    for item in Item.objects.filter(project=project):
        add_human_annotation(item=item, annotator=evil)
    cache.clear()
    # when
    body = _get(researcher, bootstrap=0).content.decode()
    # then
    assert "<script>alert" not in body and "<script>u" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "&lt;script&gt;u&lt;/script&gt;" in body
    # the CSV keeps the name as it is (it is data, not markup)
    rows = _csv(_get(researcher, bootstrap=0, download="annotators.csv"))
    assert {"import:" + XSS_SCRIPT, "<script>u</script>"} <= {r["rater"] for r in rows}


def test_the_downloads_match_the_dict(built, project, researcher):
    m = project_metrics(project, n_boot=25)
    # the JSON is the whole dict
    response = _get(researcher, bootstrap=25, download="metrics.json")
    assert response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    assert {k: v for k, v in data.items() if k != "cached"} == {k: v for k, v in m.items() if k != "cached"}
    # annotators.csv: a row per annotator, each figure as in the dict
    rows = _csv(_get(researcher, bootstrap=25, download="annotators.csv"))
    assert [r["rater"] for r in rows] == [a["rater"] for a in m["annotators"]]
    for row, a in zip(rows, m["annotators"]):
        for key in ("loo_agreement", "gold_accuracy", "items_per_hour", "median_seconds_per_item", "skip_rate",
                    "flag_rate", "distance", "n_items", "submitted", "skipped", "flagged"):
            assert _num(row[key]) == pytest.approx(a[key]), (a["rater"], key)
        for label in ("safe", "needs_caution", "unsafe"):
            assert _num(row[f"share_{label}"]) == pytest.approx(a["distribution"][label])
    # agreement.csv: every headline figure of every section
    rows = _csv(_get(researcher, bootstrap=25, download="agreement.csv"))
    expected = [(s, k, e) for s in ("prompt_safety", "response_safety", "ranking", "choice", "edit_review")
                for k, e in m[s]["agreement"].items()]
    assert [(r["section"], r["figure"]) for r in rows] == [(s, k) for s, k, _ in expected]
    for row, (_, _, est) in zip(rows, expected):
        assert [_num(row[c]) for c in ("value", "low", "high", "n_items")] == pytest.approx(
            [est["value"], est["low"], est["high"], est["n_items"]])
    # categories.csv
    rows = _csv(_get(researcher, bootstrap=25, download="categories.csv"))
    s1 = [r for r in rows if r["section"] == "prompt_safety" and r["category"] == "S1"]
    assert {r["figure"]: _num(r["value"]) for r in s1} == pytest.approx(
        {k: e["value"] for k, e in m["prompt_safety"]["categories"]["S1"].items()})
    # the matrix, one row per pair of raters
    rows = _csv(_get(researcher, bootstrap=25, download="matrix-prompt_safety.csv"))
    matrix = m["prompt_safety"]["matrix"]
    n = len(matrix["raters"])
    assert len(rows) == n * n
    for row in rows:
        i, j = matrix["raters"].index(row["rater_a"]), matrix["raters"].index(row["rater_b"])
        assert int(row["n_shared"]) == matrix["n_shared"][i][j]
        want = matrix["kappa"][i][j]
        assert (row["kappa"] == "") if want is None else float(row["kappa"]) == pytest.approx(want)
    rows = _csv(_get(researcher, bootstrap=25, download="matrix-ranking.csv"))
    assert float(next(r for r in rows if (r["rater_a"], r["rater_b"]) == ("ann0", "ann1"))["kendall_tau_b"]) == \
        pytest.approx(m["ranking"]["matrix"]["kendall_tau_b"][0][1])


def test_interval_bar_positions():
    bar = interval_bar({"value": 0.5, "low": 0.25, "high": 0.75, "n_items": 4})
    assert (bar["x"], bar["left"], bar["width"], bar["zero"]) == (50, 25, 50, None)
    bar = interval_bar({"value": 0.0, "low": -0.5, "high": 2.0, "n_items": 4}, lo=-1)
    assert (bar["x"], bar["left"], bar["width"], bar["zero"]) == (50, 25, 75, 50)  # clipped at 1
    assert interval_bar({"value": None, "low": None, "high": None, "n_items": 0}) is None
    assert interval_bar(None) is None


def _discretion_dict() -> dict:
    """A discretion section on literal inputs (3 principles, 6 pairs, two people, the jury): what
    ``metrics_report`` puts under ``discretion`` once the jury's principles task has run."""
    from annotation.metrics.report import discretion_block
    from annotation.metrics.selectors import DiscretionInputs

    p: list[list[float | None]] = [
        [1, -1, None], [1, -1, None], [1, None, -1], [None, 1, -1], [1, 1, None], [-1, None, None],
    ]
    inputs = DiscretionInputs(
        jury="jury:default", juries=["jury:default"], rows=[(k, 10 * k, 10 * k + 1) for k in range(6)],
        principles=["harm", "honesty", "<b>help</b>"], p=p,
        annotators={"alice": [1, 1, 1, 1, -1, -1], XSS_SCRIPT: [-1, -1, -1, 1, 1, 1],
                    "jury:default": [1, -1, 1, -1, 1, -1]},
        kinds={"alice": "human", XSS_SCRIPT: "human", "jury:default": "jury"},
        marks=[("alice", 0, True), ("alice", 3, False)],
    )
    return discretion_block(inputs, n_boot=20, seed=0)


def test_the_discretion_section_draws_da_ranks_ps_and_dd_escaped(project, researcher):
    from django.template.loader import render_to_string

    from annotation.views_metrics import page_context, table_rows

    disc = _discretion_dict()
    m = {"project": "demo", "n_boot": 20, "discretion": disc, "annotators": [], "raters": []}
    html = render_to_string("annotation/metrics.html", {**page_context(m), "project": project, "n_boot": 20,
                                                          "bootstrap_param": "", "downloads": {}})
    section = html.split('data-testid="discretion"')[1].split("</section>")[0]
    # DA per annotator, as the dict has it (rows 4 and 5 are the consensus rows: +1 and -1; alice
    # answers -1 on both, so she goes against one of two)
    table = section.split('data-testid="discretion-table"')[1].split("</table>")[0]
    assert disc["annotator"]["alice"]["da"] == pytest.approx(1 / 2)
    assert disc["annotator"]["jury:default"]["da"] == pytest.approx(0.0)
    for name in disc["annotators"]:
        da = disc["annotator"][name]["da"]
        assert (f"{da:.3f}" if da is not None else "—") in table
    # w* ranks side by side: one row per principle, one column per annotator
    ranks = section.split('data-testid="ranks-table"')[1].split("</table>")[0]
    assert ranks.count("<tr>") == 1 + 3 and ranks.count('<span class="rater-name">') == len(disc["annotators"])
    # one PS heatmap per annotator (3 x 3 cells each) and the DD heatmap (annotators x annotators)
    k = len(disc["annotators"])
    assert section.count('<g class="hm-cell">') == k * 9 + k * k
    assert "on 2 conflict rows" in section  # alice's PS(harm, honesty) rests on the two rows with that conflict
    # escaped: a principle and an annotator named with markup
    assert XSS_SCRIPT not in html and "<b>help</b>" not in html and "&lt;b&gt;help&lt;/b&gt;" in section
    # the CSVs hold the same numbers
    da_rows = table_rows(m, "discretion-annotators")
    assert [r[0] for r in da_rows[1:]] == disc["annotators"]
    assert da_rows[1][3] == disc["annotator"][disc["annotators"][0]]["da"]
    assert len(table_rows(m, "discretion-ps")) == 1 + k * 6 and len(table_rows(m, "discretion-dd")) == 1 + k * k
    assert len(table_rows(m, "discretion-ranks")) == 1 + k * 3
    assert table_rows(m, "conflict-capture")[1][:3] == ["alice", 2, 2]


def test_every_download_is_offered_and_answers(project, researcher, built):
    from annotation.views_metrics import DOWNLOADS

    body = _get(researcher, bootstrap=10).content.decode()
    for name in DOWNLOADS:
        response = _get(researcher, bootstrap=10, download=name)
        assert response.status_code == 200, name
        # (the discretion, choice and edit-review tables are offered where the project has them)
        if name not in ("metrics.json", "matrix-choice.csv", "matrix-edit_review.csv", "conflict-capture.csv") \
                and not name.startswith("disc"):
            assert f"download={name}" in body, name
