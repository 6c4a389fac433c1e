"""Forms for the browser pages, and the one step that browser and API uploads share."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from django import forms
from django.core.files.uploadedfile import UploadedFile

from annotation.importing import import_file
from annotation.importing.formats import rater_columns
from annotation.models import ImportBatch, PrincipleSet, Project, TaxonomyVersion


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
    mapping = forms.CharField(
        label="Column mapping",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 70, "spellcheck": "false"}),
        help_text="Only for a CSV with one label column per rater (format “CSV, one label column per rater”): "
        "JSON naming the prompt column and each rater's column.",
    )

    def clean(self):
        cleaned = super().clean()
        cleaned["options"] = options_from_mapping_text(
            cleaned.get("mapping") or "", cleaned.get("format") or ImportBatch.Format.AUTO, forms.ValidationError
        )
        return cleaned


def options_from_mapping_text(text: str, fmt: str, error: type[Exception]) -> dict:
    """The import options from a mapping typed as JSON (the import page and the API), checked as
    ``import_file`` would; raises ``error`` (a form or API validation error) with the reason."""
    if not text.strip():
        if fmt == ImportBatch.Format.CSV_RATERS:
            raise error({"mapping": "This format needs a column mapping: which column is the prompt, which are raters."})
        return {}
    try:
        mapping = json.loads(text)
    except ValueError as exc:
        raise error({"mapping": f"Not valid JSON: {exc}."}) from None
    if fmt not in (ImportBatch.Format.AUTO, ImportBatch.Format.CSV_RATERS):
        raise error({"mapping": "A column mapping is for a CSV with one label column per rater; "
                                "choose that format or “Detect”."})
    try:
        rater_columns(mapping)
    except ValueError as exc:
        raise error({"mapping": str(exc)[:1].upper() + str(exc)[1:] + "."}) from None
    return {"mapping": mapping}


def import_uploaded_file(
    *, project: Project, upload: UploadedFile, fmt: str, user, options: dict | None = None
) -> ImportBatch:
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
            project=project, path=Path(tmp_name), source_name=upload.name or "upload", fmt=fmt, user=user,
            options=options,
        )
    finally:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass


class ProjectCreateForm(forms.Form):
    """A new project from the browser (site researchers and admins); the API's POST /api/projects/ twin."""

    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=64, help_text="The project's address: /projects/<slug>/. Letters, digits, - and _.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    mode = forms.ChoiceField(choices=Project.Mode.choices, initial=Project.Mode.RANKING_SAFETY)
    overlap = forms.IntegerField(min_value=1, max_value=50, initial=2, help_text="How many annotators judge each item.")
    taxonomy_version = forms.ModelChoiceField(
        queryset=TaxonomyVersion.objects.filter(status=TaxonomyVersion.Status.PUBLISHED)
        .select_related("taxonomy").order_by("taxonomy__name", "-version"),
        empty_label=None, help_text="Published versions only: labels always name the version they used.",
    )
    principle_set = forms.ModelChoiceField(
        queryset=PrincipleSet.objects.order_by("name"), required=False,
        help_text="Principles annotators may cite (and the jury's principles task uses).",
    )
    guidelines = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 8}), help_text="Markdown, shown on the project page and in the workbench."
    )

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if slug == "new":
            raise forms.ValidationError("“new” is taken by the new-project page; choose another address.")
        if Project.objects.filter(slug=slug).exists():
            raise forms.ValidationError("A project with this address exists already; choose another.")
        return slug


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="The person's login name.")
    role = forms.ChoiceField(choices=[("annotator", "Annotator"), ("researcher", "Researcher")], initial="annotator")

    def clean_username(self):
        from django.contrib.auth import get_user_model

        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"No active user is called “{username}”. An admin creates accounts.")
        return user
