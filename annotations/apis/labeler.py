"""Labeler API: claim the next task, save a draft, submit a demonstration, skip.

The same services as the pages; one APIView per operation.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.roles import api_permission
from annotations.selectors.access import project_get_for_user
from annotations.selectors.labeler import LABELER_KINDS
from annotations.services.demonstrations import demonstration_draft_save, demonstration_submit
from annotations.services.queue import assignment_skip, task_claim_next
from annotations.users import signed_in


class TaskClaimApi(APIView):
    """Lease the next task in the project (a live lease you hold comes back first)."""

    permission_classes = [api_permission("label")]

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "TaskClaimInput"

        kind = serializers.ChoiceField(choices=list(LABELER_KINDS), required=False)

    class Output(serializers.Serializer):
        class Meta:
            ref_name = "TaskClaimOutput"

        token = serializers.UUIDField()
        kind = serializers.CharField()
        item_id = serializers.IntegerField()
        expires_at = serializers.DateTimeField()
        resumed = serializers.BooleanField()
        prompt_id = serializers.IntegerField(allow_null=True)
        prompt_text = serializers.CharField(allow_null=True)

    @extend_schema(
        request=Input,
        responses={200: Output, 204: None},
        summary="Claim the next task (204 when nothing is waiting)",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_user(user=signed_in(request.user), slug=slug, action="label")
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        kind = data.validated_data.get("kind")
        claim = task_claim_next(
            labeler=signed_in(request.user),
            project=project,
            kinds=[kind] if kind else list(LABELER_KINDS),
        )
        if claim is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        assignment = claim.assignment
        prompt = assignment.item.prompt if assignment.item.prompt_id else None
        body = {
            "token": assignment.token,
            "kind": assignment.item.kind,
            "item_id": assignment.item_id,
            "expires_at": assignment.expires_at,
            "resumed": claim.resumed,
            "prompt_id": prompt.pk if prompt else None,
            "prompt_text": prompt.text if prompt else None,
        }
        return Response(self.Output(body).data)


class DraftSaveApi(APIView):
    """Save the demonstration draft of a task; `time_spent_ms` is the time since the last save."""

    permission_classes = [api_permission("label")]

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "DraftSaveInput"

        text = serializers.CharField(allow_blank=True, trim_whitespace=False)
        time_spent_ms = serializers.IntegerField(min_value=0, default=0)

    class Output(serializers.Serializer):
        class Meta:
            ref_name = "DraftSaveOutput"

        saved_at = serializers.DateTimeField()
        chars = serializers.IntegerField()

    @extend_schema(request=Input, responses=Output, summary="Save a demonstration draft")
    def put(self, request: Request, token: str) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        saved = demonstration_draft_save(
            labeler=signed_in(request.user), token=token, **data.validated_data
        )
        return Response(self.Output({"saved_at": saved.saved_at, "chars": saved.chars}).data)


class DemonstrationSubmitApi(APIView):
    """Submit the demonstration and the prompt annotation; submitting twice stores one."""

    permission_classes = [api_permission("label")]

    class AnnotationInput(serializers.Serializer):
        class Meta:
            ref_name = "DemonstrationAnnotationInput"

        category = serializers.CharField()
        flags = serializers.DictField(child=serializers.BooleanField(), required=False)
        pii = serializers.BooleanField(default=False)
        pii_subfields = serializers.DictField(child=serializers.BooleanField(), required=False)

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "DemonstrationSubmitInput"

        text = serializers.CharField(trim_whitespace=False)
        time_spent_ms = serializers.IntegerField(min_value=0, default=0)

    class Output(serializers.Serializer):
        class Meta:
            ref_name = "DemonstrationSubmitOutput"

        id = serializers.IntegerField()
        state = serializers.CharField()
        created = serializers.BooleanField()
        time_spent_ms = serializers.IntegerField()

    @extend_schema(
        request=Input,
        responses={201: Output, 200: Output},
        summary="Submit a demonstration (201 the first time, 200 after)",
    )
    def post(self, request: Request, token: str) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        annotation = self.AnnotationInput(data=request.data.get("annotation") or {})
        annotation.is_valid(raise_exception=True)
        demonstration, created = demonstration_submit(
            labeler=signed_in(request.user),
            token=token,
            annotation=annotation.validated_data,
            **data.validated_data,
        )
        body = {
            "id": demonstration.pk,
            "state": demonstration.state,
            "created": created,
            "time_spent_ms": demonstration.time_spent_ms,
        }
        return Response(
            self.Output(body).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class TaskSkipApi(APIView):
    """Give a task back with a reason; you are not offered it again."""

    permission_classes = [api_permission("label")]

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "TaskSkipInput"

        reason = serializers.CharField(max_length=1000)

    class Output(serializers.Serializer):
        class Meta:
            ref_name = "TaskSkipOutput"

        state = serializers.CharField()
        skip_reason = serializers.CharField()

    @extend_schema(request=Input, responses=Output, summary="Skip a task")
    def post(self, request: Request, token: str) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = assignment_skip(
            labeler=signed_in(request.user), token=token, **data.validated_data
        )
        return Response(self.Output(assignment).data)
