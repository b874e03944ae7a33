from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.apis.serializers import ProjectOutput
from annotations.roles import api_permission, user_roles
from annotations.selectors.access import project_get_for_user, projects_for_user
from annotations.services.projects import project_create
from annotations.users import signed_in


class MeApi(APIView):
    class Output(serializers.Serializer):
        class Meta:
            ref_name = "Me"

        username = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=Output, summary="The signed-in user and their roles")
    def get(self, request: Request) -> Response:
        roles = sorted(role.value for role in user_roles(request.user))
        return Response(self.Output({"username": request.user.username, "roles": roles}).data)


class ProjectListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "ProjectCreate"

        name = serializers.CharField(max_length=200)
        slug = serializers.SlugField(max_length=100)
        guidelines = serializers.CharField(required=False, allow_blank=True)
        k_min = serializers.IntegerField(required=False)
        k_max = serializers.IntegerField(required=False)
        labelers_per_item = serializers.IntegerField(required=False, min_value=1, max_value=20)
        lease_minutes = serializers.IntegerField(required=False, min_value=1)
        split_train = serializers.FloatField(required=False)
        split_valid = serializers.FloatField(required=False)
        split_test = serializers.FloatField(required=False)
        max_prompts_per_customer = serializers.IntegerField(required=False, min_value=1)
        dedup_prefix_chars = serializers.IntegerField(required=False, min_value=8)
        max_prompt_tokens = serializers.IntegerField(required=False, min_value=1)
        remove_pii_from_train = serializers.BooleanField(required=False)

    def get_permissions(self) -> list:
        if self.request.method == "POST":
            return [api_permission("manage")()]
        return [IsAuthenticated()]

    @extend_schema(responses=ProjectOutput(many=True), summary="Projects you can see")
    def get(self, request: Request) -> Response:
        return Response(
            ProjectOutput(projects_for_user(user=signed_in(request.user)), many=True).data
        )

    @extend_schema(
        request=Input, responses={201: ProjectOutput}, summary="Create a project (admins)"
    )
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        project = project_create(user=signed_in(request.user), data=data.validated_data)
        return Response(ProjectOutput(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectOutput, summary="One project")
    def get(self, request: Request, slug: str) -> Response:
        return Response(
            ProjectOutput(project_get_for_user(user=signed_in(request.user), slug=slug)).data
        )
