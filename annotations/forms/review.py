"""The review decision form."""

from django import forms


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("accept", "Accept"), ("reject", "Reject"), ("edit", "Save edit and accept")]
    )
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    text = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 12}))
