"""Fetching objects on a user's behalf: every view and API goes through these, never a raw get."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from annotations.models import Job, Project
from annotations.roles import user_can


def projects_for_user(*, user: Any) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.all()


def project_get_for_user(*, user: Any, slug: str, action: str | None = None) -> Project:
    """The project, if the user may see it (and do `action` in it); 404 or 403 otherwise."""
    project = projects_for_user(user=user).filter(slug=slug).first()
    if project is None:
        raise Http404("No such project.")
    if action is not None and not user_can(user, action):
        raise PermissionDenied(f"You may not {action.replace('_', ' ')} in this project.")
    return project


def jobs_for_user(*, user: Any) -> QuerySet[Job]:
    """Admins and engineers watch every job; nobody else sees any."""
    if not user_can(user, "view_jobs"):
        return Job.objects.none()
    return Job.objects.select_related("project", "created_by")


def job_get_for_user(*, user: Any, pk: int) -> Job:
    job = jobs_for_user(user=user).filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    return job
