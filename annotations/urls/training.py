"""Pages of the training area (full paths; included at the site root; API routes: urls/api.py)."""

from django.urls import path

from annotations.views import training as views

urlpatterns: list = [
    path("training/", views.training_list, name="training_list"),
    path("projects/<slug:slug>/training/new/", views.training_new, name="training_new"),
]
