"""Writes of the jury app: jurors, juries, runs, chunks, verdicts and decisions.

One module per concern (see ``jury/tasks.py`` for the Celery side):

- ``configuration``: ``model_spec_create``, ``juror_create``, ``jury_create``, ``jury_ensure_default``
- ``runs``: ``jury_run_start`` / ``_dispatch`` / ``_cancel`` / ``_resume``, ``jury_runs_resume_all``
- ``chunks``: ``jury_chunk_claim`` (a lease), ``jury_chunk_process`` (scores, writes verdicts in
  batches that commit on their own, renews the lease after each)
- ``decisions``: pure functions, verdict rows -> a decision (no ORM)
- ``finalize``: ``jury_run_finalize`` writes the decisions; ``jury_judgment_record`` is the one
  place the jury writes ``Annotation`` / ``ResponseSafety`` / ``Item.priority``

Every public name stays importable from ``jury.services``.
"""
from __future__ import annotations

from jury.services.chunks import MAX_CHUNK_ATTEMPTS, chunk_lease_seconds, jury_chunk_claim, jury_chunk_process
from jury.services.configuration import (
    DEFAULT_JURY,
    juror_create,
    jury_create,
    jury_ensure_default,
    model_spec_create,
    packaged_models_prepare,
)
from jury.services.finalize import jury_judgment_record, jury_run_finalize
from jury.services.runs import (
    jury_run_cancel,
    jury_run_dispatch,
    jury_run_resume,
    jury_run_start,
    jury_runs_resume_all,
)

__all__ = [
    "model_spec_create", "juror_create", "jury_create", "jury_ensure_default", "jury_run_start", "jury_run_dispatch", "jury_run_cancel",
    "jury_run_resume", "jury_runs_resume_all", "jury_chunk_claim", "jury_chunk_process", "jury_run_finalize",
    "jury_judgment_record", "DEFAULT_JURY", "MAX_CHUNK_ATTEMPTS", "chunk_lease_seconds", "packaged_models_prepare",
]
