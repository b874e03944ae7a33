from django import forms

from annotations.intake.rows import FORMATS
from annotations.models import Project


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = [
            "name",
            "slug",
            "guidelines",
            "k_min",
            "k_max",
            "labelers_per_item",
            "lease_minutes",
            "revision_window_minutes",
            "split_train",
            "split_valid",
            "split_test",
            "max_prompts_per_customer",
            "dedup_prefix_chars",
            "max_prompt_tokens",
            "max_demonstration_chars",
            "remove_pii_from_train",
        ]
        widgets = {"guidelines": forms.Textarea(attrs={"rows": 12})}


class PromptImportForm(forms.Form):
    file = forms.FileField(
        help_text="JSONL (one object per line) or CSV with a header; .gz allowed."
    )
    format = forms.ChoiceField(
        choices=[("", "From the file name")] + [(f, f.upper()) for f in FORMATS], required=False
    )
    skip_invalid = forms.BooleanField(
        required=False,
        label="Skip invalid rows",
        help_text="Import the valid rows and list the others. Without it, a file with any "
        "invalid row imports nothing.",
    )
