"""exports.options.FORMAT_SPECS is the one list of export formats; everything else reads it."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from exports import card
from exports.forms import ExportForm
from exports.models import Export
from exports.options import FORMATS


def test_the_formats_in_order():
    assert FORMATS == ("dpo", "pro", "kto", "d2o", "sft", "guard-aegis", "guard-llamaguard", "edit-dpo", "salt")


def test_the_model_choices_form_and_card_read_the_one_list():
    assert Export.Format.values == list(FORMATS)
    assert Export.Format.DPO == "dpo" and Export.Format.GUARD_LLAMAGUARD == "guard-llamaguard"
    assert Export.Format.GUARD_AEGIS.label == "Guard: Aegis 2.0 rows"
    assert Export.Format.EDIT_DPO == "edit-dpo" and Export.Format.SALT.label == "SALT (token alignment of reviewed edits)"
    assert [value for value, _ in ExportForm.base_fields["format"].choices] == list(FORMATS)
    assert list(card.FORMAT_TEXT) == list(FORMATS)


def test_the_database_refuses_a_format_not_in_the_list(project):
    with pytest.raises(IntegrityError), transaction.atomic():
        Export.objects.create(project=project, format="csv")
