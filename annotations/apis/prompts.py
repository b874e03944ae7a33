from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.apis.serializers import JobOutput, PromptOutput
from annotations.errors import ApplicationError, ErrorCode
from annotations.intake.rows import FORMATS, guess_format
from annotations.label_schema import CATEGORIES
from annotations.roles import api_permission
from annotations.selectors.access import project_get_for_user
from annotations.selectors.projects import prompts_search
from annotations.services.prompts import prompt_create, prompt_import_start, prompt_upload_store
from annotations.users import signed_in


class PromptListApi(APIView):
    """List prompts (admins, engineers) or add one through the intake filters (admins)."""

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "PromptCreate"

        text = serializers.CharField(trim_whitespace=False)
        customer_id = serializers.CharField(max_length=200)
        source = serializers.ChoiceField(  # type: ignore[assignment]  # the field's name, not Field.source
            choices=["customer", "labeler"], default="customer"
        )
        category = serializers.ChoiceField(choices=CATEGORIES, required=False, allow_blank=True)

    def get_permissions(self) -> list:
        action = "import_prompts" if self.request.method == "POST" else "view_jobs"
        return [api_permission(action)()]

    @extend_schema(responses=PromptOutput(many=True), summary="Prompts of a project")
    def get(self, request: Request, slug: str) -> Response:
        project = project_get_for_user(user=signed_in(request.user), slug=slug)
        prompts = prompts_search(
            project=project,
            query=request.query_params.get("q", ""),
            split=request.query_params.get("split", ""),
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(prompts, request, view=self)
        return paginator.get_paginated_response(PromptOutput(page, many=True).data)

    @extend_schema(request=Input, responses={201: PromptOutput}, summary="Add one prompt")
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_user(user=signed_in(request.user), slug=slug)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        prompt = prompt_create(project=project, user=signed_in(request.user), **data.validated_data)
        return Response(PromptOutput(prompt).data, status=status.HTTP_201_CREATED)


class PromptImportApi(APIView):
    """Upload a JSONL or CSV file; the import runs as a job (poll GET /api/v1/jobs/{id}/)."""

    parser_classes = [MultiPartParser]
    permission_classes = [api_permission("import_prompts")]

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "PromptImport"

        file = serializers.FileField()
        format = serializers.ChoiceField(choices=list(FORMATS), required=False)
        skip_invalid = serializers.BooleanField(default=False)

    @extend_schema(request=Input, responses={202: JobOutput}, summary="Import prompts from a file")
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_user(user=signed_in(request.user), slug=slug)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        fmt = data.validated_data.get("format") or guess_format(upload.name)
        if fmt is None:
            raise ApplicationError(
                "Say the format ('jsonl' or 'csv'): the file name ends in neither.",
                code=ErrorCode.UNKNOWN_FORMAT,
            )
        path = prompt_upload_store(upload=upload)
        job = prompt_import_start(
            project=project,
            user=signed_in(request.user),
            path=path,
            filename=upload.name,
            fmt=fmt,
            skip_invalid=data.validated_data["skip_invalid"],
        )
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)
