"""The project form."""

from django import forms

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
