"""The labeler workspace: home, next task, the task pages (demonstration, prompt annotation,
prompt writing), skip; and the admin's work page (leases, priorities, queueing)."""

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotations.errors import ApplicationError
from annotations.forms.labeler import (
    AnnotationForm,
    DemonstrationForm,
    PrioritiesForm,
    PromptWritingForm,
    QueuePromptsForm,
    QueueWritingForm,
    SkipForm,
)
from annotations.models import Assignment, Project
from annotations.models.projects import WorkKind
from annotations.roles import require
from annotations.selectors.access import (
    assignment_get_for_user,
    lease_get_for_user,
    project_get_for_user,
    projects_for_user,
)
from annotations.selectors.labeler import (
    LABELER_KINDS,
    demonstration_for_task,
    labeler_acceptance,
    labeler_drafts,
    labeler_open_work,
    labeler_reviewed,
    labeler_today,
    leases_live,
    work_counts,
)
from annotations.selectors.projects import label_schema_current
from annotations.services.demonstrations import demonstration_draft_save, demonstration_submit
from annotations.services.prompt_annotations import prompt_annotation_submit
from annotations.services.prompt_writing import prompt_write
from annotations.services.queue import assignment_release, assignment_skip, task_claim_next
from annotations.services.work_admin import (
    prompt_work_queue,
    prompt_writing_queue,
    work_priorities_update,
)
from annotations.users import AuthedRequest

NOTHING_WAITING = "Nothing waiting — check back later."


@require("label")
def labeler_home(request: AuthedRequest) -> HttpResponse:
    user = request.user
    context = {
        "open_work": labeler_open_work(labeler=user),
        "today": labeler_today(labeler=user),
        "acceptance": labeler_acceptance(labeler=user),
        "reviewed": labeler_reviewed(labeler=user),
        "drafts": labeler_drafts(labeler=user),
    }
    return render(request, "labeler/home.html", context)


def _kinds(request: AuthedRequest) -> tuple[str, list[str]]:
    kind = request.POST.get("work_kind") or request.GET.get("work_kind") or ""
    if kind in LABELER_KINDS:
        return kind, [kind]
    return "", list(LABELER_KINDS)


def _go_next(request: AuthedRequest, project: Project) -> HttpResponse:
    kind, kinds = _kinds(request)
    claim = task_claim_next(labeler=request.user, project=project, kinds=kinds)
    if claim is None:
        messages.info(request, NOTHING_WAITING)
        return redirect("labeler_home")
    url = reverse("task_page", args=[claim.assignment.token])
    return redirect(f"{url}?work_kind={kind}" if kind else url)


@require("label")
@require_POST
def task_next(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="label")
    return _go_next(request, project)


@require("label")
def task_page(request: AuthedRequest, token: str) -> HttpResponse:
    assignment = assignment_get_for_user(user=request.user, token=token)
    if assignment.item.kind == WorkKind.RANKING:
        return redirect("ranking_page", token=assignment.token)
    handler = {
        WorkKind.DEMONSTRATION: _demonstration_page,
        WorkKind.PROMPT_ANNOTATION: _annotation_page,
        WorkKind.PROMPT_WRITING: _writing_page,
    }.get(assignment.item.kind)
    if handler is None:
        raise Http404("This kind of task has its own page.")
    return handler(request, assignment)


def _task_context(request: AuthedRequest, assignment: Assignment, **extra: Any) -> dict[str, Any]:
    kind, _ = _kinds(request)
    return {
        "assignment": assignment,
        "project": assignment.item.project,
        "prompt": assignment.item.prompt,
        "next_kind": kind,
        "skip_form": SkipForm(),
        **extra,
    }


def _demonstration_page(request: AuthedRequest, assignment: Assignment) -> HttpResponse:
    project = assignment.item.project
    schema = label_schema_current(project=project)
    form = DemonstrationForm(request.POST or None)
    annotation = AnnotationForm(request.POST or None, config=schema.config)
    if request.method == "POST" and form.is_valid():
        text = form.cleaned_data["text"]
        time_ms = form.cleaned_data["time_spent_ms"] or 0
        try:
            if request.POST.get("action") == "draft":
                demonstration_draft_save(
                    labeler=request.user, token=assignment.token, text=text, time_spent_ms=time_ms
                )
                messages.success(request, "Draft saved.")
                return redirect(request.get_full_path())
            if annotation.is_valid():
                _, fresh = demonstration_submit(
                    labeler=request.user,
                    token=assignment.token,
                    text=text,
                    annotation=annotation.annotation(),
                    time_spent_ms=time_ms,
                )
                messages.success(request, "Submitted." if fresh else "Submitted already.")
                return _go_next(request, project)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
    draft = demonstration_for_task(labeler=request.user, prompt_id=assignment.item.prompt_id)
    if request.method != "POST":
        form = DemonstrationForm(initial={"text": draft.text if draft else ""})
    context = _task_context(
        request, assignment, form=form, annotation=annotation, draft=draft, schema=schema
    )
    return render(request, "labeler/demonstration.html", context)


def _annotation_page(request: AuthedRequest, assignment: Assignment) -> HttpResponse:
    project = assignment.item.project
    schema = label_schema_current(project=project)
    annotation = AnnotationForm(request.POST or None, config=schema.config)
    if request.method == "POST" and annotation.is_valid():
        try:
            fresh = prompt_annotation_submit(
                labeler=request.user, token=assignment.token, annotation=annotation.annotation()
            )
        except ApplicationError as exc:
            annotation.add_error(None, exc.message)
        else:
            messages.success(request, "Submitted." if fresh else "Submitted already.")
            return _go_next(request, project)
    context = _task_context(request, assignment, annotation=annotation, schema=schema)
    return render(request, "labeler/annotation.html", context)


def _writing_page(request: AuthedRequest, assignment: Assignment) -> HttpResponse:
    form = PromptWritingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            prompt_write(
                labeler=request.user,
                token=assignment.token,
                kind=data["kind"],
                text=data["text"],
                instruction=data["instruction"],
                pairs=form.pairs(),
                use_case=data["use_case"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Your prompt joined the pool.")
            return _go_next(request, assignment.item.project)
    return render(request, "labeler/writing.html", _task_context(request, assignment, form=form))


@require("label")
@require_POST
def task_skip(request: AuthedRequest, token: str) -> HttpResponse:
    assignment = assignment_get_for_user(user=request.user, token=token)
    form = SkipForm(request.POST)
    try:
        assignment_skip(
            labeler=request.user, token=assignment.token, reason=request.POST.get("reason", "")
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(reverse("task_page", args=[assignment.token]))
    messages.info(request, f"Skipped: {form.data.get('reason', '').strip()}")
    return _go_next(request, assignment.item.project)


def _work_admin_render(request: AuthedRequest, project: Project, **forms: Any) -> HttpResponse:
    context = {
        "project": project,
        "leases": leases_live(project=project),
        "counts": work_counts(project=project),
        "queue_form": forms.get("queue_form") or QueuePromptsForm(),
        "writing_form": forms.get("writing_form") or QueueWritingForm(),
        "priorities_form": forms.get("priorities_form")
        or PrioritiesForm(priorities=project.work_priorities or {}),
    }
    template = "labeler/work_admin.html"
    if request.htmx and request.htmx.target == "leases":
        template += "#leases"
    return render(request, template, context, status=400 if forms else 200)


@require("manage")
def work_overview(request: AuthedRequest) -> HttpResponse:
    projects = projects_for_user(user=request.user)
    return render(request, "labeler/work_overview.html", {"projects": projects})


@require("manage")
def work_admin(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="manage")
    return _work_admin_render(request, project)


@require("manage")
@require_POST
def work_queue_prompts(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="manage")
    form = QueuePromptsForm(request.POST)
    if form.is_valid():
        try:
            items = prompt_work_queue(project=project, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Queued {len(items)} {form.cleaned_data['kind']} items.")
            return redirect("work_admin", slug=project.slug)
    return _work_admin_render(request, project, queue_form=form)


@require("manage")
@require_POST
def work_queue_writing(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="manage")
    form = QueueWritingForm(request.POST)
    if form.is_valid():
        items = prompt_writing_queue(project=project, count=form.cleaned_data["count"])
        messages.success(request, f"Queued {len(items)} prompt-writing tasks.")
        return redirect("work_admin", slug=project.slug)
    return _work_admin_render(request, project, writing_form=form)


@require("manage")
@require_POST
def work_priorities(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="manage")
    form = PrioritiesForm(request.POST, priorities=project.work_priorities or {})
    if form.is_valid():
        try:
            work_priorities_update(project=project, priorities=form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Priorities saved.")
            return redirect("work_admin", slug=project.slug)
    return _work_admin_render(request, project, priorities_form=form)


@require("manage")
@require_POST
def lease_release(request: AuthedRequest, slug: str, pk: int) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="manage")
    assignment = lease_get_for_user(user=request.user, project=project, pk=pk)
    assignment_release(assignment=assignment)
    if request.htmx:
        return _work_admin_render(request, project)
    messages.success(request, f"Released the lease of {assignment.labeler}.")
    return redirect("work_admin", slug=project.slug)
