"""Pages and API routes of the exports area (full paths; included at the site root)."""

from django.urls import path

from annotations.apis import exports as apis
from annotations.views import exports as views

urlpatterns: list = [
    path("projects/<slug:slug>/exports/", views.export_list, name="export_list"),
    path("projects/<slug:slug>/exports/<int:pk>/", views.export_detail, name="export_detail"),
    path(
        "projects/<slug:slug>/exports/<int:pk>/download/",
        views.export_download,
        name="export_download",
    ),
    path(
        "projects/<slug:slug>/exports/<int:pk>/delete/",
        views.export_remove,
        name="export_delete",
    ),
    path("api/v1/projects/<slug:slug>/exports/", apis.ExportListApi.as_view(), name="api_exports"),
    path(
        "api/v1/projects/<slug:slug>/exports/<int:pk>/",
        apis.ExportDetailApi.as_view(),
        name="api_export_detail",
    ),
    path(
        "api/v1/projects/<slug:slug>/exports/<int:pk>/download/",
        apis.ExportDownloadApi.as_view(),
        name="api_export_download",
    ),
]
