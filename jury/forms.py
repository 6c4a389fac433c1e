from __future__ import annotations

from django import forms

from jury.models import Jury, Task


class RunStartForm(forms.Form):
    jury = forms.ModelChoiceField(queryset=Jury.objects.order_by("name"), to_field_name="name", empty_label=None)
    task = forms.ChoiceField(choices=Task.choices)
    chunk_size = forms.IntegerField(min_value=1, max_value=10_000, required=False,
                                    help_text="Items per worker chunk (default: the jury's).")
