"""Forms for the browser pages, and the one step that browser and API uploads share."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django import forms
from django.core.files.uploadedfile import UploadedFile

from annotation.importing import import_file
from annotation.models import ImportBatch, Project


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text="JSONL (one object a line) or CSV. Big files run in the background.",
        allow_empty_file=True,  # import_file reports an empty file as an error on the batch
    )
    format = forms.ChoiceField(
        choices=ImportBatch.Format.choices,
        initial=ImportBatch.Format.AUTO,
        help_text="Leave on “Detect” unless detection guesses wrong.",
    )


def import_uploaded_file(*, project: Project, upload: UploadedFile, fmt: str, user) -> ImportBatch:
    """Write ``upload`` to a temporary file and import it with ``annotation.importing.import_file``.

    The temporary file is removed afterwards: small imports have finished by then, and big ones
    were copied under ``IMPORT_UPLOAD_DIR`` by ``import_file`` before it returned. The upload is
    streamed in chunks, so a large file never sits in memory.
    """
    suffix = Path(upload.name or "").suffix[:16]
    fd, tmp_name = tempfile.mkstemp(prefix="tribunal-upload-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        return import_file(
            project=project, path=Path(tmp_name), source_name=upload.name or "upload", fmt=fmt, user=user
        )
    finally:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
