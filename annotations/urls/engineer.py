"""Pages and API routes of the engineer area (full paths; included at the site root)."""

from django.urls import path

from annotations.apis import generation as generation_apis
from annotations.views import engineer

urlpatterns: list = [
    path("models/", engineer.model_list, name="model_list"),
    path("models/register/", engineer.model_register, name="model_register"),
    path("projects/<slug:slug>/generate/", engineer.generation_new, name="generation_new"),
    path("projects/<slug:slug>/outputs/import/", engineer.outputs_import, name="outputs_import"),
    path("api/v1/models/", generation_apis.ModelListApi.as_view(), name="api_models"),
    path(
        "api/v1/projects/<slug:slug>/generation/",
        generation_apis.GenerationStartApi.as_view(),
        name="api_generation",
    ),
    path(
        "api/v1/projects/<slug:slug>/outputs/import/",
        generation_apis.OutputsImportApi.as_view(),
        name="api_outputs_import",
    ),
]
