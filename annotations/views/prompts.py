"""Prompt pages for admins and engineers: the list with active search, and the upload."""

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render

from annotations.errors import ApplicationError
from annotations.forms.prompts import PromptImportForm
from annotations.intake.rows import guess_format
from annotations.roles import require
from annotations.selectors.access import project_get_for_user
from annotations.selectors.projects import prompts_search
from annotations.services.prompts import prompt_import_start, prompt_upload_store
from annotations.users import AuthedRequest

PAGE_SIZE = 50


@require("view_jobs")
def prompt_list(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="view_jobs")
    query = request.GET.get("q", "")
    split = request.GET.get("split", "")
    page = Paginator(prompts_search(project=project, query=query, split=split), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {"project": project, "page": page, "q": query, "split": split}
    template = "prompts/list.html"
    if request.htmx and request.htmx.target == "prompt-rows":
        template += "#rows"
    return render(request, template, context)


@require("import_prompts")
def prompt_import(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="import_prompts")
    form = PromptImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        fmt = form.cleaned_data["format"] or guess_format(upload.name)
        if fmt is None:
            form.add_error(
                "format", "Choose a format: the file name ends neither in .jsonl nor .csv."
            )
        else:
            try:
                path = prompt_upload_store(upload=upload)
                job = prompt_import_start(
                    project=project,
                    user=request.user,
                    path=path,
                    filename=upload.name,
                    fmt=fmt,
                    skip_invalid=form.cleaned_data["skip_invalid"],
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect("job_detail", pk=job.pk)
    return render(request, "prompts/import.html", {"project": project, "form": form})
