"""Pages and API routes of the ranking area (full paths; included at the site root)."""

from django.urls import path

from annotations.apis import ranking as apis
from annotations.views import ranking as views

urlpatterns = [
    path("projects/<slug:slug>/rank/", views.ranking_start, name="ranking_start"),
    path("rank/<uuid:token>/", views.ranking_page, name="ranking_page"),
    path("rank/<uuid:token>/draft/", views.ranking_draft, name="ranking_draft"),
    path("rank/<uuid:token>/skip/", views.ranking_skip, name="ranking_skip"),
    path(
        "api/v1/projects/<slug:slug>/rankings/next/",
        apis.RankingNextApi.as_view(),
        name="api_ranking_next",
    ),
    path(
        "api/v1/rankings/assignments/<uuid:token>/submit/",
        apis.RankingSubmitApi.as_view(),
        name="api_ranking_submit",
    ),
    path(
        "api/v1/rankings/assignments/<uuid:token>/draft/",
        apis.RankingDraftApi.as_view(),
        name="api_ranking_draft",
    ),
    path("api/v1/rankings/<int:pk>/", apis.RankingDetailApi.as_view(), name="api_ranking"),
]
