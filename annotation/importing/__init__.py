"""Import of items, responses and imported judgments. (Being implemented; see import_file.)"""
from __future__ import annotations

from pathlib import Path


def import_file(*, project, path: Path, source_name: str, fmt: str = "auto", user=None, background: bool | None = None):
    """Import one file into ``project`` and return its ``ImportBatch``.

    Small files run now and come back DONE or FAILED (with every error by line; nothing stored on
    failure). Files over ``IMPORT_BACKGROUND_THRESHOLD`` (or ``background=True``) are copied under
    ``IMPORT_UPLOAD_DIR``, come back PENDING and run on the Celery worker after commit.
    """
    raise NotImplementedError("import_file is being written")
