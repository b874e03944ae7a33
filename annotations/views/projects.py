"""Project pages: list, create, edit, detail, guidelines."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render

from annotations.errors import ApplicationError
from annotations.forms.projects import ProjectForm
from annotations.roles import require, user_can
from annotations.selectors.access import jobs_for_user, project_get_for_user, projects_for_user
from annotations.selectors.projects import label_schema_current, project_prompt_counts
from annotations.selectors.quality import project_quality
from annotations.services.projects import project_create, project_update
from annotations.users import AuthedRequest


@login_required
def home(request: AuthedRequest) -> HttpResponse:
    projects = projects_for_user(user=request.user)
    jobs = jobs_for_user(user=request.user)[:10]
    return render(request, "projects/home.html", {"projects": projects, "jobs": jobs})


@login_required
def project_list(request: AuthedRequest) -> HttpResponse:
    return render(request, "projects/list.html", {"projects": projects_for_user(user=request.user)})


def _form_errors_from(form: ProjectForm, exc: ApplicationError) -> None:
    fields = exc.details.get("fields") or {}
    for field, errors in fields.items():
        form.add_error(field if field in form.fields else None, errors)
    if not fields:
        form.add_error(None, exc.message)


@require("manage")
def project_new(request: AuthedRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = project_create(user=request.user, data=form.cleaned_data)
        except ApplicationError as exc:
            _form_errors_from(form, exc)
        else:
            messages.success(request, f"Project {project.name} created.")
            return redirect("project_detail", slug=project.slug)
    return render(request, "projects/form.html", {"form": form, "project": None})


@require("manage")
def project_edit(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="manage")
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        try:
            project_update(project=project, data=form.cleaned_data)
        except ApplicationError as exc:
            _form_errors_from(form, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("project_detail", slug=project.slug)
    return render(request, "projects/form.html", {"form": form, "project": project})


@login_required
def project_detail(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug)
    context = {
        "project": project,
        "schema": label_schema_current(project=project),
        "counts": project_prompt_counts(project=project)
        if user_can(request.user, "view_jobs")
        else None,
    }
    return render(request, "projects/detail.html", context)


@login_required
def project_guidelines(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug)
    return render(request, "projects/guidelines.html", {"project": project})


@require("view_jobs")
def project_quality_page(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="view_jobs")
    raw_days = request.GET.get("days", "14")
    days = min(max(int(raw_days), 1), 90) if raw_days.isascii() and raw_days.isdigit() else 14
    quality = project_quality(project=project, days=days)
    chart = {
        **quality["per_day"],
        "labelers": [entry.username for entry in quality["labelers"]],
        "agreement": [entry.agreement for entry in quality["labelers"]],
    }
    return render(
        request,
        "projects/quality.html",
        {"project": project, "quality": quality, "chart": chart, "days": days},
    )
