from typing import Any

from django import forms

from annotations.label_schema import CATEGORIES
from annotations.models.projects import Split


class GenerationForm(forms.Form):
    models = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        help_text="The K outputs of a prompt are split evenly between the chosen models.",
    )
    k = forms.IntegerField(label="K (outputs per prompt)", initial=4)
    split = forms.ChoiceField(choices=[("", "Any split"), *Split.choices], required=False)
    category = forms.ChoiceField(choices=[("", "Any category"), *CATEGORIES], required=False)
    without_comparisons = forms.BooleanField(
        initial=True, required=False, label="Only prompts without comparisons yet"
    )
    limit = forms.IntegerField(initial=50, min_value=1, label="How many prompts")
    max_tokens = forms.IntegerField(initial=64, label="Max new tokens")
    temperature = forms.FloatField(initial=1.0)
    top_p = forms.FloatField(initial=1.0, label="Top p")
    seed = forms.IntegerField(required=False, help_text="Empty: a random seed (recorded).")
    prompt_format = forms.ChoiceField(
        choices=[("chat", "Chat: the prompt is a user turn"), ("completion", "Raw completion")],
        initial="chat",
    )

    def __init__(
        self, *args: Any, model_names: list[str], k_range: tuple[int, int], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        models = self.fields["models"]
        assert isinstance(models, forms.ChoiceField)
        models.choices = [(name, name) for name in model_names]
        self.fields["k"].help_text = f"This project allows K = {k_range[0]}..{k_range[1]}."


class OutputsImportForm(forms.Form):
    file = forms.FileField(
        help_text='JSONL: {"prompt_id": 1, "model": "name", "outputs": ["...", ...]} per line.'
    )


class ModelRegisterForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=[("policy", "Policy"), ("reward", "Reward model")])
    path = forms.CharField(max_length=500, help_text="A local Hugging Face model directory.")
