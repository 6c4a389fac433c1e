"""Researchers create projects and manage who works in them, in the browser (issue 13, point 13).

- ``/projects/new/``: site researchers and admins; the creator becomes the project's researcher.
- ``/projects/<slug>/members/``: the project's researchers and admins add people by login name,
  change their role and take them out. Nobody changes or removes their own membership here (a
  researcher could lock themselves out); admins are admins everywhere and need no membership.
Everyone else gets 404 (annotators must not learn the page exists), as on every management page.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotation import roles, services
from annotation.forms import MemberAddForm, ProjectCreateForm
from annotation.models import Membership


@login_required
@require_http_methods(["GET", "POST"])
def project_new(request: HttpRequest) -> HttpResponse:
    if not roles.is_researcher(request.user):
        raise Http404("No such page.")
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project = services.project_create(
                slug=data["slug"], name=data["name"], description=data["description"], mode=data["mode"],
                overlap=data["overlap"], taxonomy_version=data["taxonomy_version"],
                principle_set=data["principle_set"], guidelines=data["guidelines"], created_by=request.user,
            )
        except (ValueError, ValidationError) as exc:
            form.add_error(None, "; ".join(getattr(exc, "messages", [str(exc)])))
        else:
            messages.success(request, f"Project “{project.name}” created. Add members, then import items.")
            return redirect("project-members", slug=project.slug)
    return render(request, "annotation/project_new.html", {"form": form}, status=400 if form.errors else 200)


def _members_context(project, form: MemberAddForm) -> dict:
    members = Membership.objects.filter(project=project).select_related("user").order_by("role", "user__username")
    return {"project": project, "members": members, "form": form, "roles": Membership.Role.choices}


@login_required
@require_http_methods(["GET", "POST"])
def project_members(request: HttpRequest, slug: str) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user, role = form.cleaned_data["username"], form.cleaned_data["role"]
        if user == request.user:
            form.add_error("username", "You cannot change your own membership here.")
        else:
            existed = Membership.objects.filter(project=project, user=user).exists()
            services.membership_set(project=project, user=user, role=role)
            verb = "is now" if existed else "added as"
            messages.success(request, f"{user.get_username()} {verb} {role} in {project.name}.")
            return redirect("project-members", slug=project.slug)
    return render(request, "annotation/members.html", _members_context(project, form),
                  status=400 if form.errors else 200)


@login_required
@require_POST
def project_member_update(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    user = get_user_model().objects.filter(pk=user_id, memberships__project=project).first()
    if user is None:
        raise Http404("No such member.")
    if user == request.user:
        messages.error(request, "You cannot change your own membership here.")
    elif request.POST.get("action") == "remove":
        services.membership_remove(project=project, user=user)
        messages.success(request, f"{user.get_username()} no longer works in {project.name}; their judgments stay.")
    elif request.POST.get("role") in Membership.Role.values:
        services.membership_set(project=project, user=user, role=request.POST["role"])
        messages.success(request, f"{user.get_username()} is now {request.POST['role']} in {project.name}.")
    else:
        messages.error(request, "Choose a role: annotator or researcher.")
    return redirect("project-members", slug=project.slug)
