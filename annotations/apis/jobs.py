from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.apis.serializers import JobOutput
from annotations.roles import api_permission
from annotations.selectors.access import job_get_for_user, jobs_for_user
from annotations.services.jobs import job_request_cancel
from annotations.users import signed_in


class JobListApi(APIView):
    permission_classes = [api_permission("view_jobs")]

    @extend_schema(responses=JobOutput(many=True), summary="Recent jobs")
    def get(self, request: Request) -> Response:
        return Response(
            JobOutput(jobs_for_user(user=signed_in(request.user))[:100], many=True).data
        )


class JobDetailApi(APIView):
    permission_classes = [api_permission("view_jobs")]

    @extend_schema(responses=JobOutput, summary="A job: state, progress, result")
    def get(self, request: Request, pk: int) -> Response:
        return Response(JobOutput(job_get_for_user(user=signed_in(request.user), pk=pk)).data)


class JobCancelApi(APIView):
    permission_classes = [api_permission("view_jobs")]

    @extend_schema(request=None, responses=JobOutput, summary="Ask a job to stop")
    def post(self, request: Request, pk: int) -> Response:
        job = job_request_cancel(job=job_get_for_user(user=signed_in(request.user), pk=pk))
        return Response(JobOutput(job).data)
