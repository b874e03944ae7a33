"""The "new export" form: kind, format and filters, each with a short help text."""

from typing import Any

from django import forms

from annotations.exports.filters import FORMAT_CHOICES
from annotations.models.jobs import ExportKind
from annotations.models.projects import Split
from annotations.models.prompts import PromptSource


class ExportForm(forms.Form):
    kind = forms.ChoiceField(
        choices=ExportKind.choices,
        help_text="SFT: prompt/completion from demonstrations. RM pairs: prompt/chosen/rejected "
        "(ties dropped). RM rankings: the K completions and rank groups. PPO: prompts only. "
        "Evaluation: held-out prompts (the test split unless you pick splits).",
    )
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="jsonl")
    splits = forms.MultipleChoiceField(
        choices=Split.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every split. One file per split.",
    )
    sources = forms.MultipleChoiceField(
        choices=PromptSource.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Who wrote the prompt. None ticked: both.",
    )
    date_from = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Submitted (labels) or created (prompts) on or after this day.",
    )
    date_to = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Date to"
    )
    labelers = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only these labelers' work (e.g. the qualified ones). None ticked: everyone.",
    )
    accepted_only = forms.BooleanField(
        initial=True,
        required=False,
        label="Accepted demonstrations only",
        help_text="SFT: leave ticked to export only reviewed and accepted demonstrations.",
    )
    consensus = forms.BooleanField(
        required=False,
        help_text="Rankings: one consensus ranking per comparison (Tideman's ranked pairs) "
        "instead of every labeler's.",
    )
    skip_none_acceptable = forms.BooleanField(
        required=False, help_text="Rankings: leave out rankings marked 'none acceptable'."
    )
    chat = forms.BooleanField(
        required=False,
        label="Chat format",
        help_text="SFT: rows as messages, conversations included.",
    )

    def __init__(self, *args: Any, labeler_choices: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labelers = self.fields["labelers"]
        assert isinstance(labelers, forms.ChoiceField)
        labelers.choices = [(str(pk), name) for pk, name in labeler_choices]

    def filters(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "splits": data["splits"],
            "sources": data["sources"],
            "date_from": data["date_from"].isoformat() if data["date_from"] else None,
            "date_to": data["date_to"].isoformat() if data["date_to"] else None,
            "labelers": [int(pk) for pk in data["labelers"]],
            "accepted_only": data["accepted_only"],
            "consensus": data["consensus"],
            "skip_none_acceptable": data["skip_none_acceptable"],
            "chat": data["chat"],
        }
