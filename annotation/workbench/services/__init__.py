"""Writes of the annotation workbench.

- :mod:`.queue`: the queue: claims and leases (``queue_next``), with the locking order written down;
- :mod:`.submissions`: submit, undo, skip, flag and adjudicate.

Callers use ``from annotation.workbench import services`` and the names below.
"""
from __future__ import annotations

from annotation.workbench.services.queue import CLAIM_ATTEMPTS, queue_next
from annotation.workbench.services.submissions import (
    SubmitResult,
    adjudication_record,
    annotation_submit,
    annotation_undo_last,
    assignment_flag,
    assignment_skip,
    validate_for_project,
)

__all__ = [
    "CLAIM_ATTEMPTS",
    "SubmitResult",
    "adjudication_record",
    "annotation_submit",
    "annotation_undo_last",
    "assignment_flag",
    "assignment_skip",
    "queue_next",
    "validate_for_project",
]
