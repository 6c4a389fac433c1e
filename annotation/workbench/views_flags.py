"""The researchers' list of flagged items (issue 13, point 10): what annotators flagged as broken or
harmful to view, with their notes, linking each item to its adjudication page (which shows the flags
beside the judgments). Skips and their reasons are one click away. Annotators and non-members: 404."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation import roles
from annotation.models import Assignment
from annotation.prompts import prompt_messages
from annotation.workbench import selectors

PAGE_SIZE = 50


def prompt_preview(prompt, limit: int = 140) -> str:
    """The last user turn of a prompt, cut to ``limit`` characters: how the list names an item."""
    turns = [m["content"] for m in prompt_messages(prompt) if m["role"] == "user"] or [""]
    text = " ".join(turns[-1].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@login_required
def flag_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = roles.get_project_for_researcher(request.user, slug)
    include_skips = request.GET.get("skips") == "1"
    page = Paginator(selectors.flagged_assignments(project=project, include_skips=include_skips), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    labels = dict(Assignment.Flag.choices) | dict(Assignment.SkipReason.choices)
    rows = [(a, prompt_preview(a.item.prompt), labels.get(a.reason, a.reason or "—")) for a in page.object_list]
    return render(
        request, "annotation/workbench/flags.html",
        {"project": project, "page": page, "rows": rows, "include_skips": include_skips},
    )
