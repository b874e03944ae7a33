"""Export pages: the snapshots of a project, a form for a new one, download and delete."""

from pathlib import Path

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotations.errors import ApplicationError
from annotations.exports.download import zip_stream
from annotations.forms.exports import ExportForm
from annotations.models import DatasetExport
from annotations.roles import require
from annotations.selectors.access import export_get_for_user, project_get_for_user
from annotations.selectors.exports import export_labeler_choices, exports_for_project
from annotations.services.exports import export_create, export_delete
from annotations.users import AuthedRequest


@require("export")
def export_list(request: AuthedRequest, slug: str) -> HttpResponse:
    """GET: the snapshots and the form; POST: start an export job and go to its page."""
    project = project_get_for_user(user=request.user, slug=slug, action="export")
    form = ExportForm(request.POST or None, labeler_choices=export_labeler_choices())
    if request.method == "POST" and form.is_valid():
        try:
            export = export_create(
                project=project,
                user=request.user,
                kind=form.cleaned_data["kind"],
                format=form.cleaned_data["format"],
                filters=form.filters(),
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("job_detail", pk=export.job_id)
    context = {
        "project": project,
        "exports": exports_for_project(project=project)[:200],
        "form": form,
    }
    return render(request, "exports/list.html", context, status=400 if form.errors else 200)


@require("export")
def export_detail(request: AuthedRequest, slug: str, pk: int) -> HttpResponse:
    export = export_get_for_user(user=request.user, slug=slug, pk=pk)
    card = ""
    if export.ready:
        card = (Path(export.directory) / "README.md").read_text()
    return render(request, "exports/detail.html", {"export": export, "card": card})


def snapshot_download(export: DatasetExport, name: str | None) -> HttpResponseBase:
    """One file of a ready snapshot (?file=train.jsonl) or the whole snapshot as a zip."""
    if not export.ready:
        raise Http404("This export is not finished.")
    folder = Path(export.directory)
    names = [f["name"] for f in export.manifest["files"]] + ["manifest.json", "README.md"]
    stem = f"{export.project.slug}-{export.kind}-v{export.version}"
    if name:
        if name not in names:
            raise Http404("No such file in this export.")
        return FileResponse((folder / name).open("rb"), as_attachment=True, filename=name)
    response = StreamingHttpResponse(
        zip_stream(folder=folder, names=names, prefix=stem), content_type="application/zip"
    )
    response["Content-Disposition"] = f'attachment; filename="{stem}.zip"'
    return response


@require("export")
def export_download(request: AuthedRequest, slug: str, pk: int) -> HttpResponseBase:
    export = export_get_for_user(user=request.user, slug=slug, pk=pk)
    return snapshot_download(export, request.GET.get("file"))


@require_POST
@require("export")
def export_remove(request: AuthedRequest, slug: str, pk: int) -> HttpResponse:
    export = export_get_for_user(user=request.user, slug=slug, pk=pk)
    try:
        export_delete(export=export)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, f"Export {export.kind} v{export.version} deleted.")
    return redirect("export_list", slug=slug)
