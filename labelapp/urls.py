from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotations.views import jobs, projects, prompts

urlpatterns = [
    path("", projects.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("projects/", projects.project_list, name="project_list"),
    path("projects/new/", projects.project_new, name="project_new"),
    path("projects/<slug:slug>/", projects.project_detail, name="project_detail"),
    path("projects/<slug:slug>/edit/", projects.project_edit, name="project_edit"),
    path(
        "projects/<slug:slug>/guidelines/", projects.project_guidelines, name="project_guidelines"
    ),
    path("projects/<slug:slug>/quality/", projects.project_quality_page, name="project_quality"),
    path("projects/<slug:slug>/prompts/", prompts.prompt_list, name="prompt_list"),
    path("projects/<slug:slug>/prompts/import/", prompts.prompt_import, name="prompt_import"),
    path("jobs/", jobs.job_list, name="job_list"),
    path("jobs/<int:pk>/", jobs.job_detail, name="job_detail"),
    path("jobs/<int:pk>/cancel/", jobs.job_cancel, name="job_cancel"),
    path("jobs/<int:pk>/rerun/", jobs.job_rerun_skipping, name="job_rerun"),
    path("api/v1/", include("annotations.urls.api")),
    path("", include("annotations.urls.labeler")),
    path("", include("annotations.urls.ranking")),
    path("", include("annotations.urls.engineer")),
    path("", include("annotations.urls.exports")),
    path("", include("annotations.urls.training")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
]
