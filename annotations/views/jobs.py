"""Job pages: a progress fragment that polls while the job runs and stops when it ends."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotations.errors import ApplicationError
from annotations.roles import require
from annotations.selectors.access import job_get_for_user, jobs_for_user
from annotations.services.jobs import job_request_cancel, job_rerun
from annotations.users import AuthedRequest

HTMX_STOP_POLLING = 286


@require("view_jobs")
def job_list(request: AuthedRequest) -> HttpResponse:
    return render(request, "jobs/list.html", {"jobs": jobs_for_user(user=request.user)[:200]})


@require("view_jobs")
def job_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    job = job_get_for_user(user=request.user, pk=pk)
    if request.htmx:
        response = render(request, "jobs/detail.html#progress", {"job": job})
        if job.is_finished:
            response.status_code = HTMX_STOP_POLLING
            response["HX-Refresh"] = "true"  # show the full report once
        return response
    return render(request, "jobs/detail.html", {"job": job})


@require_POST
@require("view_jobs")
def job_cancel(request: AuthedRequest, pk: int) -> HttpResponse:
    job = job_get_for_user(user=request.user, pk=pk)
    try:
        job_request_cancel(job=job)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, "Cancel requested; the job stops at its next step.")
    return redirect("job_detail", pk=job.pk)


@require_POST
@require("import_prompts")
def job_rerun_skipping(request: AuthedRequest, pk: int) -> HttpResponse:
    job = job_get_for_user(user=request.user, pk=pk)
    try:
        new = job_rerun(job=job, user=request.user, params={"skip_invalid": True})
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("job_detail", pk=job.pk)
    return redirect("job_detail", pk=new.pk)
