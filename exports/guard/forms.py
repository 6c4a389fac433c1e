"""The train form of the guard page (parse and validate only; the view calls the service)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils import timezone

from exports.guard.ml.config import GuardTrainConfig  # torch-free: the web process may import it
from exports.guard.models import GuardModel
from exports.models import Export


class GuardTrainForm(forms.Form):
    name = forms.SlugField(max_length=100, initial="guard", help_text="Registry name; version n+1 is added.")
    recipe = forms.ChoiceField(choices=GuardModel.Recipe.choices, initial="default")
    source = forms.ChoiceField(help_text="The project's current consensus, or one of its finished guard-aegis / guard-llamaguard exports.")
    needs_caution = forms.ChoiceField(choices=[("defensive", "defensive (counts as unsafe)"),
                                               ("permissive", "permissive (counts as safe)")], initial="defensive")
    epochs = forms.IntegerField(min_value=1, max_value=50, initial=3)
    seed = forms.IntegerField(min_value=0, initial=0)
    base = forms.CharField(
        required=False, max_length=500, label="Base model",
        help_text="A Hugging Face model folder on the worker (an encoder for default / baseline, a causal LM for "
                  "generative). Blank: the recipe's packaged model (MiniLM, or SmolLM2 for generative).",
    )
    device = forms.ChoiceField(
        required=False, initial="",
        choices=[("", "worker default (TRIBUNAL_DEVICE)"), ("cpu", "cpu"), ("cuda", "cuda")],
        help_text="Where the gpu worker trains it; the generative recipe wants cuda for anything but a smoke test.",
    )

    def __init__(self, *args, exports: Sequence[Export] = (), **kwargs):
        super().__init__(*args, **kwargs)
        source = self.fields["source"]
        assert isinstance(source, forms.ChoiceField)
        source.choices = [("consensus", "Current consensus")] + [
            (f"export:{e.pk}", f"{e.format} export #{e.pk} of {timezone.localtime(e.created_at):%Y-%m-%d %H:%M} "
                               f"({e.rows_written:,} rows)") for e in exports
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            try:
                GuardTrainConfig.from_dict(self.training_config())
            except (TypeError, ValueError) as exc:
                raise forms.ValidationError(str(exc)) from None
        return data

    def training_config(self) -> dict[str, Any]:
        """The GuardTrainConfig options the form sets (the rest keep their defaults)."""
        data = self.cleaned_data
        config: dict[str, Any] = {"recipe": data["recipe"], "epochs": data["epochs"], "seed": data["seed"]}
        if data.get("base", "").strip():
            config["base"] = data["base"].strip()
        if data.get("device"):
            config["device"] = data["device"]
        return config

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
