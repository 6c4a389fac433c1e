"""The export form of the browser page. It only collects options; ``exports.options`` validates
them (the same rules as the API and the command line)."""
from __future__ import annotations

from django import forms

from exports.consensus.rankings import RANKING_METHODS
from exports.consensus.safety import NEEDS_CAUTION_POLICIES, SAFETY_TIE_POLICIES
from exports.consensus.sources import SOURCE_POLICIES
from exports.options import (
    FORMATS,
    OUTPUTS,
    PAIR_POLICIES,
    PRO_LAYOUTS,
    PRO_LENGTH_POLICIES,
    SIGNALS,
    STYLES,
    TIE_POLICIES,
)
from exports.salt import DEFAULT_TOKENIZER
from jury.backends.registry import PACKAGED_MODELS


def _choices(values) -> list[tuple[str, str]]:
    return [(v, v) for v in values]


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        choices=_choices(FORMATS),
        help_text="edit-dpo and salt: pairs from synthetic edits that review accepted or fixed; the others: consensus of judgments.",
    )
    tokenizer = forms.CharField(
        required=False, initial=DEFAULT_TOKENIZER, max_length=1000,
        help_text=f"salt: whose token ids are aligned; a packaged model ({', '.join(sorted(PACKAGED_MODELS))}) "
                  "or the absolute path of a Hugging Face folder.",
    )
    source = forms.ChoiceField(choices=_choices(SOURCE_POLICIES), initial="human-with-jury-fallback")
    ranking_method = forms.ChoiceField(choices=_choices(RANKING_METHODS), initial="borda")
    tie_policy = forms.ChoiceField(choices=_choices(TIE_POLICIES), initial="skip",
                                   help_text="When one best or worst response must be picked from tied ones.")
    needs_caution = forms.ChoiceField(choices=_choices(NEEDS_CAUTION_POLICIES), initial="defensive",
                                      help_text="defensive: needs caution counts as unsafe; permissive: as safe.")
    safety_tie = forms.ChoiceField(choices=_choices(SAFETY_TIE_POLICIES), initial="skip")
    style = forms.ChoiceField(choices=_choices(STYLES), initial="standard",
                              help_text="standard: strings; conversational: message lists.")
    pro_layout = forms.ChoiceField(choices=_choices(PRO_LAYOUTS), initial="pro")
    pro_length = forms.IntegerField(required=False, min_value=2, label="PRO ranking length",
                                    help_text="PRO: one ranking length N for the reference trainer.")
    pro_length_policy = forms.ChoiceField(choices=_choices(PRO_LENGTH_POLICIES), initial="at-least", required=False,
                                          label="PRO length policy",
                                          help_text="at-least / exactly N responses, or truncate to the top N.")
    pair_policy = forms.ChoiceField(choices=_choices(PAIR_POLICIES), initial="best-vs-worst")
    include_margin = forms.BooleanField(required=False)
    signal = forms.ChoiceField(choices=_choices(SIGNALS), initial="preference", help_text="KTO / D2O: where good and bad come from.")
    min_agreement = forms.FloatField(required=False, min_value=0, max_value=1)
    min_annotators = forms.IntegerField(required=False, min_value=1)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    categories = forms.CharField(required=False, help_text="Category codes, names or aliases, comma-separated (e.g. S1,Violence).")
    min_jury_confidence = forms.FloatField(required=False, min_value=0, max_value=1)
    exclude_flagged = forms.BooleanField(required=False)
    split_train = forms.FloatField(initial=1.0, min_value=0, max_value=1)
    split_validation = forms.FloatField(initial=0.0, min_value=0, max_value=1)
    split_test = forms.FloatField(initial=0.0, min_value=0, max_value=1)
    seed = forms.IntegerField(initial=0, min_value=0)
    outputs = forms.MultipleChoiceField(choices=_choices(OUTPUTS), initial=["jsonl", "parquet"],
                                        widget=forms.CheckboxSelectMultiple)

    def options(self) -> dict:
        """The cleaned form as raw export options (for ``exports.options.build_options``)."""
        data = dict(self.cleaned_data)
        split = [data.pop("split_train") or 0.0, data.pop("split_validation") or 0.0, data.pop("split_test") or 0.0]
        data["split"] = split
        if data.get("format") != "salt":
            data.pop("tokenizer", None)  # only salt reads it
        if data.get("pro_length") is None or data.get("format") != "pro":
            data.pop("pro_length", None)
            data.pop("pro_length_policy", None)
        return {k: v for k, v in data.items() if v not in (None, "")}
