"""The ranking workspace as a JSON API: take the next comparison, save a draft, submit, read back.

Same services and validation as the pages; every error has the one shape
{"error": {"code", "message", "details": {"problems": [{"output", "field", "message"}]}}}.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.models.projects import WorkKind
from annotations.roles import api_permission
from annotations.selectors.access import (
    project_get_for_user,
    ranking_assignment_get_for_user,
    ranking_get_for_user,
)
from annotations.selectors.rankings import RankingAnswer, ranking_context, revision_deadline
from annotations.services.queue import task_claim_next
from annotations.services.rankings import MAX_TIME_SPENT_MS, ranking_draft_save, ranking_submit
from annotations.users import signed_in


class RankingInput(serializers.Serializer):
    """One labeler's answer; the service checks it against the comparison and label schema.
    Values inside a rating are taken as sent: likert a whole number, each field "yes", "no" or
    (where the schema allows it) "na", notes text; anything else is named in a 400."""

    class Rating(serializers.Serializer):
        class Meta:
            ref_name = "RankingRatingInput"

        likert = serializers.IntegerField(required=False, allow_null=True)
        fields = serializers.DictField(  # type: ignore[assignment]  # the answer's key: "fields"
            child=serializers.CharField(), required=False
        )
        notes = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)

    class Meta:
        ref_name = "RankingInput"

    groups = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="Completion ids, best rank first; several ids in one group are a tie.",
    )
    ratings = serializers.DictField(
        child=Rating(), help_text="Completion id -> its rating; every output needs one."
    )
    none_acceptable = serializers.BooleanField(default=False)
    notes = serializers.CharField(required=False, default="", allow_blank=True)
    time_spent_ms = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=MAX_TIME_SPENT_MS
    )


class RankingOutput(serializers.Serializer):
    class Meta:
        ref_name = "Ranking"

    id = serializers.IntegerField()
    task = serializers.IntegerField(source="task_id")
    state = serializers.CharField()
    schema_version = serializers.IntegerField()
    groups = serializers.JSONField()
    shown_order = serializers.ListField(child=serializers.IntegerField())
    ratings = serializers.JSONField()
    none_acceptable = serializers.BooleanField()
    notes = serializers.CharField()
    time_spent_ms = serializers.IntegerField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    revision_deadline = serializers.DateTimeField(allow_null=True)


class RankingBody(serializers.Serializer):
    """What the submit and draft calls parse: RankingInput's top level, with each rating left as
    an object for the service, which checks every rating against the comparison and the label
    schema anyway (and names the output in each problem). Validating the nested ratings here as
    well would double the cost of the busiest call. RankingInput documents the full shape."""

    groups = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    ratings = serializers.DictField(child=serializers.DictField())
    none_acceptable = serializers.BooleanField(default=False)
    notes = serializers.CharField(required=False, default="", allow_blank=True)
    time_spent_ms = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=MAX_TIME_SPENT_MS
    )


_DATETIME = serializers.DateTimeField()


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else _DATETIME.to_representation(moment)


def _ranking_data(ranking: Any, project: Any) -> dict[str, Any]:
    """The RankingOutput shape, built directly (this answers every submit)."""
    deadline = revision_deadline(ranking=ranking, project=project)
    return {
        "id": ranking.pk,
        "task": ranking.task_id,
        "state": ranking.state,
        "schema_version": ranking.schema_version,
        "groups": ranking.groups,
        "shown_order": ranking.shown_order,
        "ratings": ranking.ratings,
        "none_acceptable": ranking.none_acceptable,
        "notes": ranking.notes,
        "time_spent_ms": ranking.time_spent_ms,
        "submitted_at": _when(ranking.submitted_at),
        "revision_deadline": _when(deadline),
    }


def _answer(request: Request) -> RankingAnswer:
    data = RankingBody(data=request.data)
    data.is_valid(raise_exception=True)
    values = data.validated_data
    return RankingAnswer(
        groups=values["groups"],
        ratings={str(key): dict(value) for key, value in values["ratings"].items()},
        none_acceptable=values["none_acceptable"],
        notes=values["notes"],
        time_spent_ms=values["time_spent_ms"],
    )


class RankingNextApi(APIView):
    """Lease the next comparison to rate and rank (or the one you hold)."""

    permission_classes = [api_permission("label")]

    class Output(serializers.Serializer):
        class Output(serializers.Serializer):
            class Meta:
                ref_name = "RankingTaskOutput"

            id = serializers.IntegerField()
            letter = serializers.CharField()
            text = serializers.CharField()

        class Meta:
            ref_name = "RankingTask"

        token = serializers.UUIDField()
        resumed = serializers.BooleanField()
        comparison = serializers.IntegerField()
        prompt = serializers.CharField()
        outputs = Output(many=True, help_text="In the order this labeler is shown them.")
        schema_version = serializers.IntegerField()
        schema = serializers.JSONField(help_text="likert range and output_fields to answer.")
        draft = serializers.JSONField(allow_null=True, help_text="Saved partial work, if any.")

    @extend_schema(
        request=None,
        responses={200: Output, 204: OpenApiResponse(description="Nothing left for you.")},
        summary="Take the next comparison",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_user(user=signed_in(request.user), slug=slug, action="label")
        claim = task_claim_next(
            labeler=signed_in(request.user), project=project, kinds=[WorkKind.RANKING]
        )
        if claim is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        context = ranking_context(assignment=claim.assignment)
        ranking = context.ranking
        payload = {
            "token": claim.assignment.token,
            "resumed": claim.resumed,
            "comparison": context.task.pk,
            "prompt": context.task.prompt.text,
            "outputs": [
                {"id": c.pk, "letter": context.letters[c.pk], "text": c.text}
                for c in context.outputs
            ],
            "schema_version": context.schema.version,
            "schema": {
                "likert": context.schema.config["likert"],
                "output_fields": context.schema.config["output_fields"],
            },
            "draft": None if ranking is None else _ranking_data(ranking, project),
        }
        return Response(payload)  # already in the Output shape (tests check the keys)


def _store(request: Request, token: str, service: Callable[..., Any]) -> Response:
    """Validate the body, hand the answer to `service` (submit or draft) for the caller's own
    assignment, and answer with the stored ranking."""
    assignment = ranking_assignment_get_for_user(user=signed_in(request.user), token=token)
    answer = _answer(request)
    ranking = service(assignment=assignment, labeler=signed_in(request.user), answer=answer)
    return Response(_ranking_data(ranking, assignment.item.project))


class RankingSubmitApi(APIView):
    """Submit a complete ranking; the same call again is a no-op, a different one a revision."""

    permission_classes = [api_permission("label")]

    @extend_schema(request=RankingInput, responses=RankingOutput, summary="Submit a ranking")
    def post(self, request: Request, token: str) -> Response:
        return _store(request, token, ranking_submit)


class RankingDraftApi(APIView):
    """Save partial work (unplaced or unrated outputs allowed) so that it can be resumed."""

    permission_classes = [api_permission("label")]

    @extend_schema(request=RankingInput, responses=RankingOutput, summary="Save a draft ranking")
    def put(self, request: Request, token: str) -> Response:
        return _store(request, token, ranking_draft_save)


class RankingDetailApi(APIView):
    """One of your own rankings (another labeler's is a 404)."""

    permission_classes = [api_permission("label")]

    @extend_schema(responses=RankingOutput, summary="One of your rankings")
    def get(self, request: Request, pk: int) -> Response:
        ranking = ranking_get_for_user(user=signed_in(request.user), pk=pk)
        return Response(_ranking_data(ranking, ranking.task.project))
