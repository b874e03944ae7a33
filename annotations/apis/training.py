from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.apis.serializers import JobOutput
from annotations.models import DatasetExport
from annotations.roles import api_permission
from annotations.selectors.access import (
    dataset_get_for_user,
    job_get_for_user,
    model_version_get_for_user,
    project_get_for_user,
)
from annotations.selectors.training import job_metrics_series, job_samples
from annotations.services.training import training_start


class TrainingStartApi(APIView):
    """Start SFT, reward-model, PPO-ptx or RLOO training on a dataset snapshot (engineers)."""

    permission_classes = [api_permission("train")]

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "TrainingStart"

        kind = serializers.ChoiceField(choices=["sft", "reward", "ppo", "rloo"])
        dataset = serializers.IntegerField(help_text="id of a finished export snapshot")
        base_model = serializers.CharField()
        reward_model = serializers.CharField(required=False, allow_null=True, default=None)
        demonstrations = serializers.IntegerField(required=False, allow_null=True, default=None)
        pretrain = serializers.IntegerField(required=False, allow_null=True, default=None)
        hyperparameters = serializers.DictField(required=False, default=dict)
        seed = serializers.IntegerField(required=False, allow_null=True, default=None)
        backend = serializers.ChoiceField(
            choices=["local", "ray_openrlhf"],
            default="local",
            help_text="local: our trainers through accelerate; ray_openrlhf: the Ray cluster "
            "running OpenRLHF (reward and PPO)",
        )
        cluster = serializers.DictField(
            required=False,
            default=dict,
            help_text="ray_openrlhf placement: nodes, gpus_per_node, vllm_engines, "
            "vllm_tensor_parallel, zero_stage, colocate, micro_batch, bf16",
        )
        launch = serializers.DictField(
            required=False,
            default=dict,
            help_text='{"preset": single|ddp|fsdp|zero2|zero3, "processes": per host, '
            '"hosts": [first (this worker), ...], "main_port"}',
        )

    @extend_schema(request=Input, responses={202: JobOutput}, summary="Start a training job")
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_user(user=request.user, slug=slug, action="train")
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        values, user = data.validated_data, request.user

        def snapshot(pk: int | None) -> DatasetExport | None:
            return dataset_get_for_user(user=user, project=project, pk=pk) if pk else None

        job = training_start(
            user=user,
            kind=values["kind"],
            dataset=dataset_get_for_user(user=user, project=project, pk=values["dataset"]),
            base_model=model_version_get_for_user(user=user, name=values["base_model"]),
            reward_model=model_version_get_for_user(user=user, name=values["reward_model"])
            if values["reward_model"]
            else None,
            demonstrations=snapshot(values["demonstrations"]),
            pretrain=snapshot(values["pretrain"]),
            hyperparameters=values["hyperparameters"],
            seed=values["seed"],
            launch=values["launch"] or None,
            backend=values["backend"],
            cluster=values["cluster"] or None,
        )
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class JobSampleRowOutput(serializers.Serializer):
    prompt = serializers.CharField(allow_blank=True)
    response = serializers.CharField(allow_blank=True)
    reward = serializers.FloatField(allow_null=True)
    ended = serializers.BooleanField(allow_null=True, default=None)


class JobSamplesOutput(serializers.Serializer):
    step = serializers.IntegerField()
    rows = JobSampleRowOutput(many=True)


class JobMetricsApi(APIView):
    """Metrics per step of a job, as series for charts."""

    permission_classes = [api_permission("view_jobs")]

    class Output(serializers.Serializer):
        class Meta:
            ref_name = "JobMetrics"

        steps = serializers.ListField(child=serializers.IntegerField())
        series = serializers.DictField(child=serializers.ListField(allow_null=True))
        samples = JobSamplesOutput(
            many=True, help_text="sample generations of the last steps that logged"
        )
        state = serializers.CharField()
        percent = serializers.IntegerField()

    @extend_schema(responses=Output, summary="A job's metrics per step and sample generations")
    def get(self, request: Request, pk: int) -> Response:
        job = job_get_for_user(user=request.user, pk=pk)
        body = {
            **job_metrics_series(job=job),
            "samples": job_samples(job=job),
            "state": job.state,
            "percent": job.percent,
        }
        return Response(self.Output(body).data)
