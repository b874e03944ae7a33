from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.apis.serializers import JobOutput
from annotations.label_schema import CATEGORIES
from annotations.models import ModelVersion
from annotations.roles import api_permission
from annotations.selectors.access import project_get_for_user
from annotations.selectors.models import model_versions_list
from annotations.services.generation import Sampling, generation_start
from annotations.services.model_versions import model_version_register
from annotations.services.outputs_import import outputs_import_start
from annotations.services.prompts import prompt_upload_store
from annotations.users import signed_in


class ModelVersionOutput(serializers.ModelSerializer):
    parent: serializers.SlugRelatedField = serializers.SlugRelatedField(  # type: ignore[assignment]  # the field's name, not Field.parent
        slug_field="name", read_only=True
    )

    class Meta:
        model = ModelVersion
        fields = ["id", "name", "kind", "path", "hub_id", "parent", "job", "metrics", "created_at"]


class ModelListApi(APIView):
    """Registered model versions (admins, engineers); register one by path (engineers)."""

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "ModelRegister"

        name = serializers.CharField(max_length=200)
        kind = serializers.ChoiceField(choices=["policy", "reward"], default="policy")
        path = serializers.CharField(max_length=500)

    def get_permissions(self) -> list:
        return [api_permission("train" if self.request.method == "POST" else "view_jobs")()]

    @extend_schema(responses=ModelVersionOutput(many=True), summary="Model versions")
    def get(self, request: Request) -> Response:
        return Response(ModelVersionOutput(model_versions_list(), many=True).data)

    @extend_schema(request=Input, responses={201: ModelVersionOutput}, summary="Register a model")
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        version = model_version_register(**data.validated_data)
        return Response(ModelVersionOutput(version).data, status=status.HTTP_201_CREATED)


class GenerationStartApi(APIView):
    """Sample K outputs per prompt from model versions; creates comparison tasks (a job)."""

    permission_classes = [api_permission("generate")]

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "GenerationStart"

        models = serializers.ListField(child=serializers.CharField(), min_length=1)
        k = serializers.IntegerField()
        split = serializers.ChoiceField(choices=["", "train", "valid", "test"], default="")
        category = serializers.ChoiceField(
            choices=CATEGORIES, required=False, allow_blank=True, default=""
        )
        without_comparisons = serializers.BooleanField(default=True)
        limit = serializers.IntegerField(default=100)
        max_tokens = serializers.IntegerField(default=64)
        temperature = serializers.FloatField(default=1.0)
        top_p = serializers.FloatField(default=1.0)
        seed = serializers.IntegerField(required=False, allow_null=True, default=None)
        prompt_format = serializers.ChoiceField(choices=["chat", "completion"], default="chat")

    @extend_schema(request=Input, responses={202: JobOutput}, summary="Start a generation job")
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_user(user=signed_in(request.user), slug=slug, action="generate")
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        sampling = Sampling(
            max_tokens=values.pop("max_tokens"),
            temperature=values.pop("temperature"),
            top_p=values.pop("top_p"),
        )
        job = generation_start(
            project=project, user=signed_in(request.user), sampling=sampling, **values
        )
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class OutputsImportApi(APIView):
    """Upload model outputs (JSONL) to create comparison tasks without the service (a job)."""

    parser_classes = [MultiPartParser]
    permission_classes = [api_permission("generate")]

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "OutputsImport"

        file = serializers.FileField()

    @extend_schema(request=Input, responses={202: JobOutput}, summary="Import model outputs")
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_user(user=signed_in(request.user), slug=slug, action="generate")
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        path = prompt_upload_store(upload=upload)
        job = outputs_import_start(
            project=project, user=signed_in(request.user), path=path, filename=upload.name
        )
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)
