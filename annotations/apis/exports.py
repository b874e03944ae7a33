"""Export API: list and create snapshots (a job), read one with its manifest, download, delete."""

from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.apis.serializers import JobOutput
from annotations.exports.filters import FORMAT_CHOICES
from annotations.models import DatasetExport
from annotations.models.jobs import ExportKind
from annotations.models.projects import Split
from annotations.models.prompts import PromptSource
from annotations.roles import api_permission
from annotations.selectors.access import export_get_for_user, project_get_for_user
from annotations.selectors.exports import exports_for_project
from annotations.services.exports import export_create, export_delete
from annotations.users import signed_in
from annotations.views.exports import snapshot_download


class ExportOutput(serializers.ModelSerializer):
    project: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    kind = serializers.CharField(read_only=True, help_text=f"One of {ExportKind.values}.")
    job_state = serializers.CharField(source="job.state", read_only=True, default=None)

    class Meta:
        model = DatasetExport
        ref_name = "DatasetExport"
        fields = [
            "id",
            "project",
            "kind",
            "format",
            "version",
            "filters",
            "row_count",
            "ready",
            "job",
            "job_state",
            "created_at",
        ]


class ExportDetailOutput(ExportOutput):
    class Meta(ExportOutput.Meta):
        ref_name = "DatasetExportDetail"
        fields = [*ExportOutput.Meta.fields, "manifest"]


class ExportListApi(APIView):
    """A project's dataset snapshots, newest first; POST starts a new export job (202)."""

    permission_classes = [api_permission("export")]

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "ExportCreate"

        kind = serializers.CharField(help_text=f"One of {ExportKind.values}.")
        format = serializers.ChoiceField(choices=FORMAT_CHOICES, default="jsonl")
        splits = serializers.ListField(
            child=serializers.CharField(),
            required=False,
            default=list,
            help_text=f"Any of {Split.values}; empty: every split.",
        )
        sources = serializers.ListField(
            child=serializers.CharField(),
            required=False,
            default=list,
            help_text=f"Any of {PromptSource.values}; empty: both.",
        )
        date_from = serializers.DateField(required=False, allow_null=True, default=None)
        date_to = serializers.DateField(required=False, allow_null=True, default=None)
        labelers = serializers.ListField(
            child=serializers.IntegerField(), required=False, default=list
        )
        accepted_only = serializers.BooleanField(default=True)
        consensus = serializers.BooleanField(default=False)
        skip_none_acceptable = serializers.BooleanField(default=False)
        chat = serializers.BooleanField(default=False)

    class CreatedOutput(serializers.Serializer):
        class Meta:
            ref_name = "ExportCreated"

        export = ExportOutput()
        job = JobOutput()

    @extend_schema(responses=ExportOutput(many=True), summary="Dataset exports of a project")
    def get(self, request: Request, slug: str) -> Response:
        project = project_get_for_user(user=signed_in(request.user), slug=slug, action="export")
        exports = exports_for_project(project=project)[:200]
        return Response(ExportOutput(exports, many=True).data)

    @extend_schema(request=Input, responses={202: CreatedOutput}, summary="Start an export")
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_user(user=signed_in(request.user), slug=slug, action="export")
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        options = dict(data.validated_data)
        kind, fmt = options.pop("kind"), options.pop("format")
        for key in ("date_from", "date_to"):
            options[key] = options[key].isoformat() if options[key] else None
        export = export_create(
            project=project, user=signed_in(request.user), kind=kind, format=fmt, filters=options
        )
        body = {"export": ExportOutput(export).data, "job": JobOutput(export.job).data}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    """One snapshot with its manifest; DELETE removes its files and row."""

    permission_classes = [api_permission("export")]

    @extend_schema(responses=ExportDetailOutput, summary="A dataset export and its manifest")
    def get(self, request: Request, slug: str, pk: int) -> Response:
        export = export_get_for_user(user=signed_in(request.user), slug=slug, pk=pk)
        return Response(ExportDetailOutput(export).data)

    @extend_schema(responses={204: None}, summary="Delete a dataset export")
    def delete(self, request: Request, slug: str, pk: int) -> Response:
        export = export_get_for_user(user=signed_in(request.user), slug=slug, pk=pk)
        export_delete(export=export)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExportDownloadApi(APIView):
    """The snapshot as a streamed zip, or one of its files with ?file=<name>."""

    permission_classes = [api_permission("export")]

    @extend_schema(
        parameters=[OpenApiParameter("file", str, required=False)],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        summary="Download a dataset export",
    )
    def get(self, request: Request, slug: str, pk: int) -> HttpResponseBase:
        export = export_get_for_user(user=signed_in(request.user), slug=slug, pk=pk)
        return snapshot_download(export, request.query_params.get("file"))
