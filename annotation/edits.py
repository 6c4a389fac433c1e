"""Writes for synthetic edits (issue 11): the edited response and its review item.

``annotation`` knows nothing of the editor (``jury.edits``): it stores what it is given. An edit is
a ``Response(origin=edited, parent=<source>)`` appended to the source's own item, where ordinary
(``judge``) reads never show it (``Response.JUDGED_ORIGINS``); humans see it through an
``edit_review`` item made for it. Re-exported by ``annotation.services``.
"""
from __future__ import annotations

import hashlib

from django.db import transaction
from django.db.models import Max

from annotation.models import Item, Response


def edit_review_content_hash(edited_response_id: int) -> str:
    """The content hash of an edit's review item: it can never equal a judge item's hash (those
    hash a prompt and responses), and one edit has one review item per project."""
    return hashlib.sha256(f"edit-review:{edited_response_id}".encode()).hexdigest()


@transaction.atomic
def edited_response_create(
    parent: Response, text: str, *, origin: str = Response.Origin.EDITED, model_name: str = "",
    metadata: dict | None = None,
) -> Response:
    """Store an edit of ``parent`` at the next position of the parent's item.

    ``origin`` is ``edited`` (a model's edit) or ``human_edited`` (a reviewer's fix, whose parent is
    the edit it fixes). The item row is locked so two writers cannot take the same position."""
    if origin not in Response.EDIT_ORIGINS:
        raise ValueError(f"An edited response has origin {' or '.join(Response.EDIT_ORIGINS)}, not {origin!r}.")
    Item.objects.select_for_update().filter(pk=parent.item_id).values_list("pk", flat=True).first()
    top = Response.objects.filter(item_id=parent.item_id).aggregate(top=Max("position"))["top"]
    return Response.objects.create(
        item_id=parent.item_id, position=(top + 1) if top is not None else 0, text=text,
        model_name=model_name, origin=origin, parent=parent, metadata=metadata or {},
    )


@transaction.atomic
def edit_review_item_create(edited_response: Response, *, meta: dict) -> Item:
    """The ``edit_review`` item that asks humans to accept, reject or fix ``edited_response``.

    Same project as the edit, the original item's prompt, ``metadata["edit"] = meta`` (direction,
    feedback, editor, template, run, word_distance: what the workbench shows). Idempotent: an edit
    has one review item."""
    if edited_response.origin != Response.Origin.EDITED or edited_response.parent_id is None:
        raise ValueError("Only a model's edit (origin edited, with a parent) gets a review item.")
    original = Item.objects.get(pk=edited_response.item_id)
    item, _ = Item.objects.get_or_create(
        project_id=original.project_id,
        content_hash=edit_review_content_hash(edited_response.pk),
        defaults={
            "prompt": original.prompt,
            "kind": Item.Kind.EDIT_REVIEW,
            "review_of": edited_response,
            "metadata": {"edit": dict(meta), "original_item": original.pk},
        },
    )
    return item
