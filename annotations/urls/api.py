"""Every API route (mounted at /api/v1/), one APIView per operation."""

from django.urls import path

from annotations.apis import (
    exports,
    generation,
    jobs,
    labeler,
    projects,
    prompts,
    ranking,
    training,
)

urlpatterns = [
    path("me/", projects.MeApi.as_view(), name="api_me"),
    path("projects/", projects.ProjectListApi.as_view(), name="api_projects"),
    path("projects/<slug:slug>/", projects.ProjectDetailApi.as_view(), name="api_project"),
    # prompts
    path("projects/<slug:slug>/prompts/", prompts.PromptListApi.as_view(), name="api_prompts"),
    path(
        "projects/<slug:slug>/prompts/import/",
        prompts.PromptImportApi.as_view(),
        name="api_prompt_import",
    ),
    # labeling work
    path("projects/<slug:slug>/work/next/", labeler.TaskClaimApi.as_view(), name="api_task_claim"),
    path("work/<uuid:token>/draft/", labeler.DraftSaveApi.as_view(), name="api_draft_save"),
    path(
        "work/<uuid:token>/demonstration/",
        labeler.DemonstrationSubmitApi.as_view(),
        name="api_demonstration_submit",
    ),
    path("work/<uuid:token>/skip/", labeler.TaskSkipApi.as_view(), name="api_task_skip"),
    # rankings
    path(
        "projects/<slug:slug>/rankings/next/",
        ranking.RankingNextApi.as_view(),
        name="api_ranking_next",
    ),
    path(
        "rankings/assignments/<uuid:token>/submit/",
        ranking.RankingSubmitApi.as_view(),
        name="api_ranking_submit",
    ),
    path(
        "rankings/assignments/<uuid:token>/draft/",
        ranking.RankingDraftApi.as_view(),
        name="api_ranking_draft",
    ),
    path("rankings/<int:pk>/", ranking.RankingDetailApi.as_view(), name="api_ranking"),
    # models and generation
    path("models/", generation.ModelListApi.as_view(), name="api_models"),
    path(
        "projects/<slug:slug>/generation/",
        generation.GenerationStartApi.as_view(),
        name="api_generation",
    ),
    path(
        "projects/<slug:slug>/outputs/import/",
        generation.OutputsImportApi.as_view(),
        name="api_outputs_import",
    ),
    # datasets
    path("projects/<slug:slug>/exports/", exports.ExportListApi.as_view(), name="api_exports"),
    path(
        "projects/<slug:slug>/exports/<int:pk>/",
        exports.ExportDetailApi.as_view(),
        name="api_export_detail",
    ),
    path(
        "projects/<slug:slug>/exports/<int:pk>/download/",
        exports.ExportDownloadApi.as_view(),
        name="api_export_download",
    ),
    # jobs and training
    path("jobs/", jobs.JobListApi.as_view(), name="api_jobs"),
    path("jobs/<int:pk>/", jobs.JobDetailApi.as_view(), name="api_job"),
    path("jobs/<int:pk>/cancel/", jobs.JobCancelApi.as_view(), name="api_job_cancel"),
    path("jobs/<int:pk>/metrics/", training.JobMetricsApi.as_view(), name="api_job_metrics"),
    path(
        "projects/<slug:slug>/training/", training.TrainingStartApi.as_view(), name="api_training"
    ),
]
