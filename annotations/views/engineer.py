"""Engineer pages: model versions, generation jobs, imports of model outputs."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render

from annotations.errors import ApplicationError
from annotations.forms.engineer import GenerationForm, ModelRegisterForm, OutputsImportForm
from annotations.models.outputs import ModelKind
from annotations.roles import require
from annotations.selectors.access import project_get_for_user
from annotations.selectors.models import model_versions_list
from annotations.services.generation import Sampling, generation_start
from annotations.services.model_versions import model_version_register
from annotations.services.outputs_import import outputs_import_start
from annotations.services.prompts import prompt_upload_store
from annotations.users import AuthedRequest


@require("view_jobs")
def model_list(request: AuthedRequest) -> HttpResponse:
    return render(
        request,
        "engineer/model_list.html",
        {"versions": model_versions_list(), "form": ModelRegisterForm()},
    )


@require("train")
def model_register(request: AuthedRequest) -> HttpResponse:
    form = ModelRegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            version = model_version_register(**form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Model {version.name} registered; the service serves it.")
            return redirect("model_list")
    return render(
        request,
        "engineer/model_list.html",
        {"versions": model_versions_list(), "form": form},
        status=400 if form.errors else 200,
    )


@require("generate")
def generation_new(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="generate")
    names = [v.name for v in model_versions_list(kind=ModelKind.POLICY)]
    # "Sample the next round" from a training job arrives with its model chosen.
    initial = {"models": [n for n in request.GET.getlist("models") if n in names]}
    form = GenerationForm(
        request.POST or None,
        initial=initial,
        model_names=names,
        k_range=(project.k_min, project.k_max),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = generation_start(
                project=project,
                user=request.user,
                models=data["models"],
                k=data["k"],
                sampling=Sampling(
                    max_tokens=data["max_tokens"],
                    temperature=data["temperature"],
                    top_p=data["top_p"],
                ),
                split=data["split"],
                category=data["category"],
                without_comparisons=data["without_comparisons"],
                limit=data["limit"],
                seed=data["seed"],
                prompt_format=data["prompt_format"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("job_detail", pk=job.pk)
    return render(request, "engineer/generation_form.html", {"project": project, "form": form})


@require("generate")
def outputs_import(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="generate")
    form = OutputsImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            path = prompt_upload_store(upload=upload)
            job = outputs_import_start(
                project=project, user=request.user, path=path, filename=upload.name
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("job_detail", pk=job.pk)
    return render(request, "engineer/outputs_import.html", {"project": project, "form": form})
