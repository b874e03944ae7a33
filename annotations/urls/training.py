"""Pages and API routes of the training area (full paths; included at the site root)."""

from django.urls import path

from annotations.apis import training as apis
from annotations.views import training as views

urlpatterns: list = [
    path("training/", views.training_list, name="training_list"),
    path("projects/<slug:slug>/training/new/", views.training_new, name="training_new"),
    path(
        "api/v1/projects/<slug:slug>/training/",
        apis.TrainingStartApi.as_view(),
        name="api_training",
    ),
    path("api/v1/jobs/<int:pk>/metrics/", apis.JobMetricsApi.as_view(), name="api_job_metrics"),
]
