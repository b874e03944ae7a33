"""Pages of the exports area (full paths; included at the site root; API routes: urls/api.py)."""

from django.urls import path

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
]
