"""Pages of the ranking area (full paths; included at the site root; API routes: urls/api.py)."""

from django.urls import path

from annotations.views import ranking as views

urlpatterns: list = [
    path("projects/<slug:slug>/rank/", views.ranking_start, name="ranking_start"),
    path("rank/<uuid:token>/", views.ranking_page, name="ranking_page"),
    path("rank/<uuid:token>/draft/", views.ranking_draft, name="ranking_draft"),
    path("rank/<uuid:token>/skip/", views.ranking_skip, name="ranking_skip"),
]
