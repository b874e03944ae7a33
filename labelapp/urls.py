from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotations.apis import jobs as job_apis
from annotations.apis import projects as project_apis
from annotations.apis import prompts as prompt_apis
from annotations.views import jobs, projects, prompts

api_v1 = [
    path("me/", project_apis.MeApi.as_view(), name="api_me"),
    path("projects/", project_apis.ProjectListApi.as_view(), name="api_projects"),
    path("projects/<slug:slug>/", project_apis.ProjectDetailApi.as_view(), name="api_project"),
    path("projects/<slug:slug>/prompts/", prompt_apis.PromptListApi.as_view(), name="api_prompts"),
    path(
        "projects/<slug:slug>/prompts/import/",
        prompt_apis.PromptImportApi.as_view(),
        name="api_prompt_import",
    ),
    path("jobs/", job_apis.JobListApi.as_view(), name="api_jobs"),
    path("jobs/<int:pk>/", job_apis.JobDetailApi.as_view(), name="api_job"),
    path("jobs/<int:pk>/cancel/", job_apis.JobCancelApi.as_view(), name="api_job_cancel"),
]

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
    path("api/v1/", include(api_v1)),
    path("", include("annotations.urls.labeler")),
    path("", include("annotations.urls.ranking")),
    path("", include("annotations.urls.engineer")),
    path("", include("annotations.urls.exports")),
    path("", include("annotations.urls.training")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
]
