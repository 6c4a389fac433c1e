"""The train form of the guard page (parse and validate only; the view calls the service)."""
from __future__ import annotations

from collections.abc import Sequence

from django import forms

from exports.guard.models import GuardModel
from exports.models import Export


class GuardTrainForm(forms.Form):
    name = forms.SlugField(max_length=100, initial="guard", help_text="Registry name; version n+1 is added.")
    recipe = forms.ChoiceField(choices=GuardModel.Recipe.choices, initial="default")
    source = forms.ChoiceField(help_text="The project's current consensus, or one of its finished guard-aegis exports.")
    needs_caution = forms.ChoiceField(choices=[("defensive", "defensive (counts as unsafe)"),
                                               ("permissive", "permissive (counts as safe)")], initial="defensive")
    epochs = forms.IntegerField(min_value=1, max_value=50, initial=3)
    seed = forms.IntegerField(min_value=0, initial=0)

    def __init__(self, *args, exports: Sequence[Export] = (), **kwargs):
        super().__init__(*args, **kwargs)
        source = self.fields["source"]
        assert isinstance(source, forms.ChoiceField)
        source.choices = [("consensus", "Current consensus")] + [
            (f"export:{e.pk}", f"Export #{e.pk} ({e.rows_written} rows, {e.created_at:%Y-%m-%d})") for e in exports
        ]


class GuardEvaluateFileForm(forms.Form):
    """Evaluate a guard on an uploaded labelled file (the view hands it to the service)."""

    file = forms.FileField(
        allow_empty_file=True,  # the service reports an empty file by name
        help_text="JSONL or CSV (or .gz of either): prompt, optional response, label (safe / unsafe / needs_caution) "
                  "and optional categories under this guard's taxonomy; Aegis 2.0 rows; OpenAI moderation samples.",
    )
    needs_caution = forms.ChoiceField(choices=[("defensive", "defensive (counts as unsafe)"),
                                               ("permissive", "permissive (counts as safe)")], initial="defensive",
                                      label="Needs caution")
