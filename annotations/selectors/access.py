"""Fetching objects on a user's behalf: every view and API goes through these, never a raw get."""

import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from annotations.models import Job, Project
from annotations.roles import user_can
from annotations.users import AnyUser


def projects_for_user(*, user: AnyUser) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.all()


def project_get_for_user(*, user: AnyUser, slug: str, action: str | None = None) -> Project:
    """The project, if the user may see it (and do `action` in it); 404 or 403 otherwise."""
    from annotations.hotpath import hot_path

    project = hot_path().project_by_slug(slug=slug) if user.is_authenticated else None
    if project is None:
        raise Http404("No such project.")
    if action is not None and not user_can(user, action):
        raise PermissionDenied(f"You may not {action.replace('_', ' ')} in this project.")
    return project


def jobs_for_user(*, user: AnyUser) -> QuerySet[Job]:
    """Admins and engineers watch every job; nobody else sees any."""
    if not user_can(user, "view_jobs"):
        return Job.objects.none()
    return Job.objects.select_related("project", "created_by")


def job_get_for_user(*, user: AnyUser, pk: int) -> Job:
    job = jobs_for_user(user=user).filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    return job


def assignment_get_for_user(*, user: AnyUser, token: Any) -> Any:
    """The user's own assignment with this token (any state); 404 for anyone else's."""
    from annotations.models import Assignment

    assignment = (
        Assignment.objects.select_related("item", "item__project", "item__prompt")
        .filter(labeler_id=user.pk, token=token)
        .first()
    )
    if assignment is None:
        raise Http404("No such task.")
    return assignment


def lease_get_for_user(*, user: AnyUser, project: Project, pk: int) -> Any:
    """A lease in the project, for users who manage it; 404 or 403 otherwise."""
    from annotations.models import Assignment

    if not user_can(user, "manage"):
        raise PermissionDenied("Only admins release leases.")
    assignment = Assignment.objects.filter(pk=pk, item__project=project).first()
    if assignment is None:
        raise Http404("No such lease.")
    return assignment


def demonstration_get_for_user(*, user: AnyUser, pk: int) -> Any:
    """A demonstration its author may read, or a reviewer may review (not their own); 404 else."""
    from annotations.models import Demonstration

    demonstration = (
        Demonstration.objects.select_related("prompt", "prompt__project", "labeler", "reviewed_by")
        .filter(pk=pk)
        .first()
    )
    if demonstration is None:
        raise Http404("No such demonstration.")
    own = demonstration.labeler_id == user.pk
    if not own and (demonstration.state == "draft" or not user_can(user, "review")):
        raise Http404("No such demonstration.")
    return demonstration


def ranking_assignment_get_for_user(*, user: AnyUser, token: Any) -> Any:
    """The user's own ranking assignment with this token, in any state, with its item and
    project; 404 for anyone else's (nobody learns that it exists)."""
    from annotations.models.projects import WorkKind

    assignment = (
        assignment_find(labeler_id=user.pk, token=token, kind=WorkKind.RANKING)
        if user.is_authenticated
        else None
    )
    if assignment is None or assignment.item.comparison_id is None:
        raise Http404("No such ranking task of yours.")
    return assignment


def assignment_find(*, labeler_id: int, token: Any, kind: str | None = None) -> Any:
    """The labeler's own assignment with this token (and of this kind), any state, with its item
    and the item's project; None when there is none (or the token is not a UUID)."""
    from annotations.hotpath import hot_path

    try:
        token = token if isinstance(token, uuid.UUID) else uuid.UUID(str(token))
    except ValueError:
        return None
    return hot_path().assignment_find(labeler_id=labeler_id, token=token, kind=kind)


def ranking_get_for_user(*, user: AnyUser, pk: int) -> Any:
    """The user's own ranking; another labeler's answer is a 404 for everyone, admins included
    (review and exports read rankings through their own selectors)."""
    from annotations.models import Ranking

    ranking = (
        Ranking.objects.select_related("task__project").filter(pk=pk, labeler_id=user.pk).first()
        if user.is_authenticated
        else None
    )
    if ranking is None:
        raise Http404("No such ranking of yours.")
    return ranking


def dataset_get_for_user(*, user: AnyUser, project: Any, pk: Any) -> Any:
    """A dataset snapshot of the project, for admins and engineers (export permission)."""
    from annotations.models import DatasetExport

    if not user_can(user, "export") and not user_can(user, "train"):
        raise PermissionDenied("Datasets are for admins and engineers.")
    export = DatasetExport.objects.filter(project=project, pk=pk).first()
    if export is None:
        raise Http404("No such dataset snapshot.")
    return export


def model_version_get_for_user(*, user: AnyUser, name: str) -> Any:
    from annotations.models import ModelVersion

    if not user_can(user, "view_jobs"):
        raise PermissionDenied("Models are for admins and engineers.")
    version = ModelVersion.objects.filter(name=name).first()
    if version is None:
        raise Http404(f"No model named {name!r}.")
    return version


def export_get_for_user(*, user: AnyUser, slug: str, pk: int) -> Any:
    """A dataset export of the project, for users who may export; 404 or 403 otherwise."""
    from annotations.models import DatasetExport

    project = project_get_for_user(user=user, slug=slug, action="export")
    export = (
        DatasetExport.objects.select_related("project", "job", "created_by")
        .filter(pk=pk, project=project)
        .first()
    )
    if export is None:
        raise Http404("No such export.")
    return export
