"""Guard pages: the guards usable under a project's taxonomy version, train one, follow its
training live (htmx), see its metrics, promote it.

Researchers of the project and admins only; annotators and non-members get 404
(``annotation.roles.get_project_for_researcher``), as on every management page.
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from annotation import roles
from exports.guard import selectors, services
from exports.guard.forms import GuardTrainForm
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
    return list(Export.objects.filter(project=project, format="guard-aegis", status="done").order_by("-created_at")[:20])


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
    versions = list(selectors.guard_versions(name=guard.name)[:20])
    context = {
        "project": project, "guard": guard, "training": training,
        "running": guard.status == guard.Status.TRAINING,
        "validation": validation,
        "categories": sorted((validation or {}).get("categories", {}).items(), key=lambda kv: -kv[1]["support"]),
        "evaluations": evaluations,
        "versions": [(v, _delta(v, guard)) for v in versions],
    }
    template = "guard/guard_detail.html"
    if getattr(request, "htmx", False):
        template += "#guard-status"  # the polled region alone
    return render(request, template, context)


def _delta(other, guard) -> dict:
    """Validation F1 / AUROC of ``other`` and their difference to ``guard``'s."""
    def pick(g, key):
        return (((g.metrics or {}).get("validation") or {}).get("binary") or {}).get(key)

    out = {}
    for key in ("f1", "auroc"):
        a, b = pick(other, key), pick(guard, key)
        out[key] = a
        out[f"{key}_delta"] = None if a is None or b is None else a - b
    return out


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
            services.guard_evaluation_request(guard_model=guard, project=project)
        elif action == "cancel" and getattr(guard, "training", None) is not None:
            services.guard_training_cancel(training=guard.training)
        else:
            raise Http404("No such action.")
    except services.GuardError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return redirect("guard-detail", slug=project.slug, pk=guard.pk)
