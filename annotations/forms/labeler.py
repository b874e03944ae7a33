"""Forms of the labeler workspace, the work admin page and the review page."""

from typing import Any

from django import forms

from annotations.label_schema import CATEGORIES
from annotations.models.projects import Split, WorkKind
from annotations.models.prompts import PromptKind

FEW_SHOT_SLOTS = 4
CATEGORY_LABELS = dict(CATEGORIES)


class AnnotationForm(forms.Form):
    """The per-prompt questions of a label schema version: category, flags, PII."""

    def __init__(self, *args: Any, config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        categories = config.get("categories") or []
        self.fields["category"] = forms.ChoiceField(
            choices=[("", "Choose…")] + [(c, CATEGORY_LABELS.get(c, c)) for c in categories]
        )
        self.flag_names = []
        for flag in config.get("prompt_flags") or []:
            name = f"flag_{flag['key']}"
            self.fields[name] = forms.BooleanField(required=False, label=flag["label"])
            self.flag_names.append(name)
        self.fields["pii"] = forms.BooleanField(required=False, label="Contains PII")
        self.pii_names = []
        for sub in config.get("pii_subfields") or []:
            name = f"pii_{sub['key']}"
            self.fields[name] = forms.BooleanField(required=False, label=sub["label"])
            self.pii_names.append(name)

    def flag_fields(self) -> list:
        return [self[name] for name in self.flag_names]

    def pii_fields(self) -> list:
        return [self[name] for name in self.pii_names]

    def annotation(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "category": data["category"],
            "flags": {n.removeprefix("flag_"): data[n] for n in self.flag_names},
            "pii": data["pii"],
            "pii_subfields": {n.removeprefix("pii_"): data[n] for n in self.pii_names},
        }

    @staticmethod
    def initial_from(data: dict[str, Any]) -> dict[str, Any]:
        initial: dict[str, Any] = {"category": data.get("category", ""), "pii": data.get("pii")}
        initial |= {f"flag_{k}": v for k, v in (data.get("flags") or {}).items()}
        initial |= {f"pii_{k}": v for k, v in (data.get("pii_subfields") or {}).items()}
        return initial


class DemonstrationForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 14}), strip=False, required=False)
    time_spent_ms = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)


class SkipForm(forms.Form):
    reason = forms.CharField(max_length=1000, label="Reason to skip")


class PromptWritingForm(forms.Form):
    kind = forms.ChoiceField(choices=PromptKind.choices, initial=PromptKind.PLAIN)
    use_case = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Use case"
    )
    text = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 8}), label="Prompt"
    )
    instruction = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Instruction"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for i in range(1, FEW_SHOT_SLOTS + 1):
            self.fields[f"query_{i}"] = forms.CharField(
                required=False, widget=forms.Textarea(attrs={"rows": 2}), label=f"Query {i}"
            )
            self.fields[f"response_{i}"] = forms.CharField(
                required=False, widget=forms.Textarea(attrs={"rows": 2}), label=f"Response {i}"
            )

    def pair_fields(self) -> list[tuple]:
        return [(self[f"query_{i}"], self[f"response_{i}"]) for i in range(1, FEW_SHOT_SLOTS + 1)]

    def pairs(self) -> list[dict[str, str]]:
        data = self.cleaned_data
        return [
            {"query": data[f"query_{i}"], "response": data[f"response_{i}"]}
            for i in range(1, FEW_SHOT_SLOTS + 1)
        ]


class QueuePromptsForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            (k, WorkKind(k).label) for k in (WorkKind.DEMONSTRATION, WorkKind.PROMPT_ANNOTATION)
        ]
    )
    count = forms.IntegerField(min_value=1, max_value=100_000, initial=100, label="Prompts")
    split = forms.ChoiceField(choices=[("", "Any split"), *Split.choices], required=False)
    category = forms.ChoiceField(choices=[("", "Any category"), *CATEGORIES], required=False)
    only_unqueued = forms.BooleanField(required=False, initial=True, label="Not yet queued")


class QueueWritingForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=10_000, initial=20, label="Tasks")


class PrioritiesForm(forms.Form):
    def __init__(self, *args: Any, priorities: dict[str, int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind, label in WorkKind.choices:
            self.fields[kind] = forms.IntegerField(
                min_value=0, max_value=1000, label=label, initial=priorities.get(kind, 0)
            )
