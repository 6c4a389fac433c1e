"""Fixtures for the workbench tests (imported explicitly by them).

Items arrive through the real import service, users and projects through the core services, and
judgments through the workbench services, as in production.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from annotation import services
from annotation.importing import import_file
from annotation.models import ImportBatch, Item, Membership, Project
from annotation.workbench.judgments import Judgment, ResponseLabel


def make_items(project: Project, tmp_path: Path, n: int, *, responses: int = 3, prefix: str = "i",
               prompt: str | None = None, texts: list[str] | None = None) -> list[Item]:
    records = [
        {
            "id": f"{prefix}-{i}",
            "prompt": prompt if prompt is not None else f"Prompt number {i} ({prefix})",
            "responses": texts if texts is not None else [f"Response {j} to {prefix}-{i}" for j in range(responses)],
        }
        for i in range(n)
    ]
    path = tmp_path / f"{prefix}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    batch = import_file(project=project, path=path, source_name=path.name, fmt="tribunal")
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    return list(Item.objects.filter(project=project, external_id__startswith=f"{prefix}-").order_by("id"))


def make_annotators(project: Project, n: int, *, prefix: str = "ann") -> list:
    group = Group.objects.get(name="annotator")
    users = []
    for i in range(n):
        user = get_user_model().objects.create_user(username=f"{prefix}{i}", password=f"pw-{prefix}{i}")
        user.groups.add(group)
        services.membership_set(project=project, user=user, role=Membership.Role.ANNOTATOR)
        users.append(user)
    return users


def ranking_judgment(shown_order: list[int], **extra) -> Judgment:
    """Best first in the shown order; the last two tied."""
    ranking = [[rid] for rid in shown_order[:-2]] + [list(shown_order[-2:])]
    return Judgment(ranking=ranking, **extra)


def full_judgment(project: Project, shown_order: list[int], **extra) -> Judgment:
    """A valid judgment for any mode of ``project``."""
    mode = project.mode
    kw: dict = {}
    if mode in ("ranking", "ranking_safety"):
        kw["ranking"] = [[rid] for rid in shown_order]
    if mode == "pairwise":
        kw.update(pair_choice="a", pair_strength=2)
    if mode in ("safety", "ranking_safety"):
        kw["response_labels"] = {rid: ResponseLabel(label="safe") for rid in shown_order}
        if mode == "safety":
            kw["prompt_label"] = "safe"
    kw.update(extra)
    return Judgment(**kw)
