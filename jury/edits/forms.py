from __future__ import annotations

from django import forms

from jury.edits.models import Direction, EditTemplate
from jury.edits.services import DEFAULT_OPTIONS, FEEDBACK_SOURCES
from jury.models import ModelSpec


class EditRunStartForm(forms.Form):
    editor = forms.ModelChoiceField(queryset=ModelSpec.objects.order_by("name"), to_field_name="name",
                                    empty_label=None, help_text="A model spec (packaged, local folder or endpoint).")
    direction = forms.ChoiceField(choices=Direction.choices)
    template = forms.ModelChoiceField(queryset=EditTemplate.objects.order_by("name", "-version"), required=False,
                                      help_text="Default: the newest default template of the direction.")
    feedback = forms.MultipleChoiceField(
        choices=[(s, s) for s in FEEDBACK_SOURCES], initial=list(FEEDBACK_SOURCES), required=False,
        widget=forms.CheckboxSelectMultiple, help_text="Improve: what drives the edit.",
    )
    instruction = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=4000,
                                  help_text="Improve: your instruction. Corrupt: the flaw to plant.")
    max_extra_words = forms.IntegerField(min_value=0, max_value=500, initial=DEFAULT_OPTIONS["max_extra_words"])
    min_ratio = forms.FloatField(min_value=0, max_value=10, initial=DEFAULT_OPTIONS["min_ratio"],
                                 help_text="Kept band of the word-level edit distance ratio.")
    max_ratio = forms.FloatField(min_value=0, max_value=10, initial=DEFAULT_OPTIONS["max_ratio"])
    limit = forms.IntegerField(min_value=1, required=False, help_text="Most responses to edit.")
    batch_size = forms.IntegerField(min_value=1, max_value=256, initial=DEFAULT_OPTIONS["batch_size"])
    seed = forms.IntegerField(initial=0)

    def options(self) -> dict:
        data = self.cleaned_data
        return {k: data[k] for k in ("feedback", "instruction", "max_extra_words", "min_ratio", "max_ratio",
                                     "limit", "batch_size", "seed") if data.get(k) is not None}


class TemplateReviseForm(forms.Form):
    template = forms.ModelChoiceField(queryset=EditTemplate.objects.all(), widget=forms.HiddenInput)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 14}), max_length=20000)
    notes = forms.CharField(required=False, max_length=500)
