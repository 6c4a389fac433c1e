"""Guard pages: the guards usable under a project's taxonomy version, train one, follow its
training and its evaluation jobs live (htmx), cancel them, see its metrics, promote it.

Researchers of the project and admins only; annotators and non-members get 404
(``annotation.roles.get_project_for_researcher``), as on every management page.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from annotation import roles
from exports.guard import selectors, services
from exports.guard.forms import GuardEvaluateFileForm, GuardTrainForm
from exports.models import Export


def get_guard_for_researcher(request: HttpRequest, slug: str, pk: int):
    """(project, guard) when the user manages the project and the guard is under its taxonomy
    version; 404 otherwise."""
    project = roles.get_project_for_researcher(request.user, slug)
    guard = selectors.guard_model_get(pk=pk)
    if guard is None or guard.taxonomy_version_id != project.taxonomy_version_id:
        raise Http404("No such guard.")
    return project, guard


def _guard_exports(project) -> list[Export]:
    return list(Export.objects.filter(project=project, format__in=["guard-aegis", "guard-llamaguard"], status="done").order_by("-created_at")[:20])


@login_required
@require_http_methods(["GET", "POST"])
def guard_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    exports = _guard_exports(project)
    status = 200
    if request.method == "POST":
        form = GuardTrainForm(request.POST, exports=exports)
        if form.is_valid():
            data = form.cleaned_data
            export = None
            if data["source"] == "consensus":
                spec = {"kind": "project", "slug": project.slug, "needs_caution": data["needs_caution"]}
            else:
                export = next(e for e in exports if f"export:{e.pk}" == data["source"])
                spec = {"kind": "export", "path": export.out_dir, "needs_caution": data["needs_caution"]}
            try:
                job = services.guard_training_request(
                    name=data["name"], taxonomy_version=project.taxonomy_version, source_spec=spec,
                    config=form.training_config(),
                    user=request.user, project=project, export=export,
                )
            except services.GuardError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("guard-detail", slug=project.slug, pk=job.guard_model_id)
        status = 400
    else:
        form = GuardTrainForm(exports=exports)
    guards = list(selectors.guard_model_list(taxonomy_version=project.taxonomy_version)[:100])
    context = {"project": project, "form": form, "guards": guards}
    return render(request, "guard/guards.html", context, status=status)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def guard_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, guard = get_guard_for_researcher(request, slug, pk)
    training = getattr(guard, "training", None)
    validation = (guard.metrics or {}).get("validation") or (training.val_metrics if training else None) or None
    evaluations = sorted(((guard.metrics or {}).get("evaluations") or {}).items())
    versions = [v for v in selectors.guard_versions(name=guard.name)[:50]
                if v.taxonomy_version_id == project.taxonomy_version_id][:20]
    names = selectors.category_names(guard.taxonomy_version) if validation else {}
    context = {
        "project": project, "guard": guard, "training": training,
        "running": guard.status == guard.Status.TRAINING,
        "validation": validation,
        "categories": sorted(((code, {**m, "name": names.get(code, "")}) for code, m in (validation or {}).get("categories", {}).items()),
                             key=lambda kv: -kv[1]["support"]),
        "evaluations": evaluations,
        **_versions_context(guard, versions),
    }
    context.update(_evaluations_context(guard))
    context.update(_evaluation_jobs_context(guard))
    template = "guard/guard_detail.html"
    if getattr(request, "htmx", False) and request.GET.get("part") == "evaluation-jobs":
        if not context["eval_active"]:  # the last evaluation ended: reload once for its report
            return HttpResponse(status=204, headers={"HX-Refresh": "true"})
        return render(request, template + "#guard-eval-jobs", context)  # the polled list alone
    if getattr(request, "htmx", False):
        template += "#guard-status"  # the polled region alone
        if not context["running"]:  # the training ended: reload once for the actions and evaluations
            return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    return render(request, template, context)


_METRIC_LABELS = {"f1": "F1", "precision": "Precision", "recall": "Recall", "auroc": "AUROC",
                  "ece": "ECE", "flagged_safe_share": "Safe flagged"}
_COMPARED = tuple(_METRIC_LABELS)  # the comparison's columns (PR-AUC stays in the stored deltas)


def _signed(delta: float | None) -> str:
    return "" if delta is None else f"{delta:+.3f}"


def _versions_context(guard, versions) -> dict:
    """The versions section (``guard/_versions.html``): every version of the name beside the one
    before it, and, for a retrained version, its comparison with the version it retrains on the
    same evaluation sets (``metrics["comparison"]``, stored by ``guard_versions_compare``)."""
    from exports.guard.loop import metric_deltas

    ordered = sorted(versions, key=lambda v: v.version)
    rows = []
    for n, v in enumerate(ordered):
        before = ordered[n - 1] if n else None
        val = (metric_deltas(v.metrics or {}, before.metrics or {}) if before else {}).get("validation")
        binary = ((v.metrics or {}).get("validation") or {}).get("binary") or {}
        cells = []
        for key in ("f1", "auroc", "ece"):
            d = (val or {}).get(key) or {}
            cells.append({"value": binary.get(key), "delta": _signed(d.get("delta")), "better": d.get("better")})
        rows.append({"guard": v, "before": before, "cells": cells,
                     "sets": len((v.metrics or {}).get("evaluations") or {})})
    comparison = (guard.metrics or {}).get("comparison") or None
    compared = []
    if comparison:
        for name, metrics in comparison.get("sets", {}).items():
            compared.append({
                "name": "Validation split (each its own)" if name == "validation" else name,
                "n": metrics.get("n") or {},
                "cells": [{"current": m["current"], "previous": m["previous"], "delta": _signed(m["delta"]),
                           "better": m["better"]}
                          for k in _COMPARED for m in (metrics.get(k) or {"current": None, "previous": None,
                                                                           "delta": None, "better": None},)],
            })
    training = getattr(guard, "training", None)
    retrain_of = ((training.source_spec if training else {}) or {}).get("retrain_of")
    if comparison:
        comparison = {**comparison, "compared_at": selectors.stored_time(comparison.get("compared_at"))}
    return {"version_rows": list(reversed(rows)), "comparison": comparison, "compared_sets": compared,
            "compared_labels": [_METRIC_LABELS[k] for k in _COMPARED],
            "retrain_of": retrain_of, "can_retrain": guard.status != guard.Status.TRAINING}


@login_required
@require_POST
def guard_action(request: HttpRequest, slug: str, pk: int, action: str) -> HttpResponse:
    project, guard = get_guard_for_researcher(request, slug, pk)
    try:
        if action == "promote":
            services.guard_model_promote(guard_model=guard)
        elif action == "retire":
            services.guard_model_retire(guard_model=guard)
        elif action == "evaluate":
            evaluation = services.guard_evaluation_request(guard_model=guard, project=project, user=request.user)
            messages.success(request, f"Evaluation of {guard.name} v{guard.version} on {evaluation.data_name} queued on the "
                                      "gpu worker; follow it under Evaluation jobs.")
        elif action == "cancel" and getattr(guard, "training", None) is not None:
            services.guard_training_cancel(training=guard.training)
        elif action == "retrain":
            job = services.guard_retrain_request(guard_model=guard, user=request.user, project=project)
            return redirect("guard-detail", slug=project.slug, pk=job.guard_model_id)
        else:
            raise Http404("No such action.")
    except services.GuardError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return redirect("guard-detail", slug=project.slug, pk=guard.pk)


# --- evaluations: the report page, the comparison across versions, evaluating an uploaded file -------
def _evaluation_jobs_context(guard) -> dict:
    """The evaluation jobs region of the detail page (polled while one is pending or running)."""
    eval_jobs = selectors.guard_evaluation_jobs_recent(guard_model=guard)
    return {"eval_jobs": eval_jobs, "eval_active": any(j.active for j in eval_jobs)}


def _evaluations_context(guard, form: GuardEvaluateFileForm | None = None) -> dict:
    """What templates/guard/_evaluations.html needs (the detail page includes it)."""
    return {"compare": selectors.guard_evaluations_compare(guard), "eval_form": form or GuardEvaluateFileForm()}


@login_required
@require_http_methods(["GET", "POST"])
def guard_evaluations(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """GET: every stored evaluation of this guard's versions side by side, and the upload form.
    POST: evaluate the guard on an uploaded labelled file (checked now, line by line; evaluated on
    the gpu worker). A bad file is a 400 naming the line; nothing is kept or queued."""
    project, guard = get_guard_for_researcher(request, slug, pk)
    form = GuardEvaluateFileForm()
    status = 200
    if request.method == "POST":
        form = GuardEvaluateFileForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                job, count = services.guard_evaluation_upload_request(
                    guard_model=guard, upload=form.cleaned_data["file"], needs_caution=form.cleaned_data["needs_caution"],
                    user=request.user)
            except services.GuardError as exc:
                form.add_error("file", str(exc))
            else:
                messages.success(request, f"Evaluation of {guard.name} v{guard.version} on {job.data_name} ({count} examples) "
                                          "queued on the gpu worker; follow it under Evaluation jobs, its report appears "
                                          "under Evaluations when it is done.")
                return redirect("guard-detail", slug=project.slug, pk=guard.pk)
        status = 400
    context = {"project": project, "guard": guard, "standalone": True, **_evaluations_context(guard, form)}
    return render(request, "guard/evaluations.html", context, status=status)


@login_required
@require_GET
def guard_evaluation(request: HttpRequest, slug: str, pk: int, data: str) -> HttpResponse:
    """One stored evaluation report of one guard: confusion matrix, per-category F1, reliability
    diagram, over-refusal, worst errors (escaped), all drawn server-side from the stored numbers."""
    project, guard = get_guard_for_researcher(request, slug, pk)
    view = selectors.evaluation_view(guard, data)
    if view is None:
        raise Http404("No such evaluation.")
    compare = selectors.guard_evaluations_compare(guard)
    row = next((r for r in compare["rows"] if r["name"] == data), None)
    context = {"project": project, "guard": guard, "ev": view, "versions_row": row, "compare": compare}
    return render(request, "guard/evaluation.html", context)


@login_required
@require_POST
def guard_evaluation_cancel(request: HttpRequest, slug: str, pk: int, job: int) -> HttpResponse:
    """Cancel one pending or running evaluation job of this guard (it stops before its next chunk
    and stores nothing)."""
    project, guard = get_guard_for_researcher(request, slug, pk)
    evaluation = selectors.guard_evaluation_job_get(guard_model=guard, pk=job)
    if evaluation is None:
        raise Http404("No such evaluation job.")
    if services.guard_evaluation_cancel(evaluation=evaluation):
        messages.success(request, f"Evaluation on {evaluation.data_name} cancelled.")
    else:
        messages.info(request, f"The evaluation on {evaluation.data_name} had already ended ({evaluation.get_status_display().lower()}).")
    return redirect("guard-detail", slug=project.slug, pk=guard.pk)
