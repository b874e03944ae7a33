"""Pages and API routes of the exports area (full paths; included at the site root)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
