"""The workbench's names for judgments, which live in :mod:`annotation.judgments` (one definition
of a judgment and its rules for every source: people, imports, the jury, guards, edit review)."""
from __future__ import annotations

from annotation.judgments import (
    MAX_RATIONALE,
    CleanJudgment,
    Judgment,
    JudgmentInvalid,
    ResponseLabel,
    StaleAssignment,
    WorkbenchError,
    annotation_fields,
    judgment_validate,
    mode_parts,
)

__all__ = [
    "MAX_RATIONALE", "CleanJudgment", "Judgment", "JudgmentInvalid", "ResponseLabel", "StaleAssignment",
    "WorkbenchError", "annotation_fields", "judgment_validate", "mode_parts",
]
