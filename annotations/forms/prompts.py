"""The prompt upload form."""

from django import forms

from annotations.intake.rows import FORMATS


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
