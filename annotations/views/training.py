"""The training dashboard: start a job from a snapshot and a model, watch it, see the result."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotations.errors import ApplicationError
from annotations.forms.training import KIND_CHOICES, TrainingForm
from annotations.roles import require
from annotations.selectors.access import (
    dataset_get_for_user,
    model_version_get_for_user,
    project_get_for_user,
)
from annotations.selectors.training import training_form_choices, training_jobs
from annotations.services.training import training_start


@require("view_jobs")
def training_list(request: HttpRequest) -> HttpResponse:
    return render(request, "training/list.html", {"jobs": training_jobs()[:100]})


@require("train")
def training_new(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="train")
    kind = request.GET.get("kind") or request.POST.get("kind") or "reward"
    if kind not in dict(KIND_CHOICES):
        kind = "reward"
    form = TrainingForm(
        request.POST or None, kind=kind, choices=training_form_choices(project=project, kind=kind)
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = request.user
        backend, cluster = form.backend() if "launch_backend" in form.fields else ("local", None)
        try:
            job = training_start(
                user=user,
                kind=kind,
                dataset=dataset_get_for_user(user=user, project=project, pk=data["dataset"]),
                base_model=model_version_get_for_user(user=user, name=data["base_model"]),
                reward_model=model_version_get_for_user(user=user, name=data["reward_model"])
                if data.get("reward_model")
                else None,
                demonstrations=dataset_get_for_user(
                    user=user, project=project, pk=data["demonstrations"]
                )
                if data.get("demonstrations")
                else None,
                pretrain=dataset_get_for_user(user=user, project=project, pk=data["pretrain"])
                if data.get("pretrain")
                else None,
                hyperparameters=form.hyperparameters(),
                seed=data["seed"],
                launch=form.launch(),
                backend=backend,
                cluster=cluster,
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("job_detail", pk=job.pk)
    return render(
        request,
        "training/new.html",
        {"project": project, "form": form, "kind": kind, "kinds": KIND_CHOICES},
    )
