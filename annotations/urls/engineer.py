"""Pages of the engineer area (full paths; included at the site root; API routes: urls/api.py)."""

from django.urls import path

from annotations.views import engineer

urlpatterns: list = [
    path("models/", engineer.model_list, name="model_list"),
    path("models/register/", engineer.model_register, name="model_register"),
    path("projects/<slug:slug>/generate/", engineer.generation_new, name="generation_new"),
    path("projects/<slug:slug>/outputs/import/", engineer.outputs_import, name="outputs_import"),
]
