"""Import of items, responses and imported judgments.

Public entry points:

- ``import_file(*, project, path, source_name, fmt="auto", user=None, background=None, options=None)``: import one
  file; small files run now (DONE or FAILED, nothing stored on failure), big ones (or
  ``background=True``) come back PENDING and run on the Celery worker.
- ``import_batch_run(*, batch_id)``: run a stored background batch (what the Celery task calls).
- ``import_batches_resume()``: re-queue background batches whose worker died (run at worker start).

Formats: ``tribunal`` (own JSONL), ``csv``, ``hh-rlhf``, ``oasst``, ``aegis``; ``auto`` detects;
``csv-raters`` (one label column per rater) needs ``options={"mapping": {...}}``. Several raters'
labels of one item are stored as separate imported annotations with the rater's id (``Annotation.rater``).
See ``formats.py`` for each format's mapping and ``service.py`` for the two-pass, all-or-nothing
contract.
"""
from __future__ import annotations

from annotation.importing.detect import FORMATS
from annotation.importing.service import import_batch_run, import_batches_reap, import_batches_resume, import_file

__all__ = ["FORMATS", "import_batch_run", "import_batches_reap", "import_batches_resume", "import_file"]
