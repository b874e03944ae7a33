"""Pages of the labeler area (full paths; included at the site root; API routes: urls/api.py)."""

from django.urls import path

from annotations.views import labeler, review

urlpatterns: list = [
    path("work/", labeler.labeler_home, name="labeler_home"),
    path("work/admin/", labeler.work_overview, name="work_overview"),
    path("work/tasks/<uuid:token>/", labeler.task_page, name="task_page"),
    path("work/tasks/<uuid:token>/skip/", labeler.task_skip, name="task_skip"),
    path("projects/<slug:slug>/work/next/", labeler.task_next, name="task_next"),
    path("projects/<slug:slug>/work/", labeler.work_admin, name="work_admin"),
    path(
        "projects/<slug:slug>/work/queue/prompts/",
        labeler.work_queue_prompts,
        name="work_queue_prompts",
    ),
    path(
        "projects/<slug:slug>/work/queue/writing/",
        labeler.work_queue_writing,
        name="work_queue_writing",
    ),
    path("projects/<slug:slug>/work/priorities/", labeler.work_priorities, name="work_priorities"),
    path(
        "projects/<slug:slug>/work/leases/<int:pk>/release/",
        labeler.lease_release,
        name="lease_release",
    ),
    path("review/", review.review_list, name="review_list"),
    path("review/demonstrations/<int:pk>/", review.review_detail, name="review_detail"),
]
