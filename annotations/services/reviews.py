"""Review of submitted demonstrations: accept, reject with a comment, or edit."""

from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from annotations.errors import ApplicationError, ErrorCode
from annotations.models import Demonstration
from annotations.models.labels import DemonstrationState
from annotations.roles import user_can
from annotations.users import User


class Decision(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    EDIT = "edit"


def demonstration_review(
    *,
    demonstration_id: int,
    reviewer: User,
    decision: str,
    comment: str = "",
    text: str | None = None,
) -> Demonstration:
    """Record one review of a submitted demonstration, atomically (the row is locked, so two
    reviewers cannot both decide). Nobody reviews their own work; a rejection needs a comment;
    an edit keeps the labeler's text in `original_text` and accepts the edited text."""
    if not user_can(reviewer, "review"):
        raise ApplicationError("Your account may not review.", code=ErrorCode.FORBIDDEN)
    if decision not in Decision.__members__.values():
        raise ApplicationError(
            f"Decide one of {', '.join(Decision)}, not {decision!r}.",
            code=ErrorCode.INVALID_DECISION,
        )
    comment = comment.strip()
    if decision == Decision.REJECT and not comment:
        raise ApplicationError(
            "Say why you reject it: the labeler sees your comment.", code=ErrorCode.COMMENT_REQUIRED
        )
    with transaction.atomic():
        demonstration = (
            Demonstration.objects.select_for_update()
            .select_related("prompt__project")
            .filter(pk=demonstration_id)
            .first()
        )
        if demonstration is None or demonstration.state == DemonstrationState.DRAFT:
            raise ApplicationError("No such demonstration.", code=ErrorCode.NOT_FOUND)
        if demonstration.labeler_id == reviewer.pk:
            raise ApplicationError(
                "You cannot review your own demonstration; another reviewer will.",
                code=ErrorCode.OWN_WORK,
            )
        if demonstration.state != DemonstrationState.SUBMITTED:
            raise ApplicationError(
                f"This demonstration was {demonstration.state} already.",
                code=ErrorCode.ALREADY_REVIEWED,
            )
        fields = ["state", "review_comment", "reviewed_by", "reviewed_at", "updated_at"]
        if decision == Decision.EDIT:
            _apply_edit(demonstration=demonstration, text=text or "")
            fields += ["text", "original_text"]
        demonstration.state = (
            DemonstrationState.REJECTED
            if decision == Decision.REJECT
            else DemonstrationState.ACCEPTED
        )
        demonstration.review_comment = comment
        demonstration.reviewed_by = reviewer
        demonstration.reviewed_at = timezone.now()
        demonstration.save(update_fields=fields)
    return demonstration


def _apply_edit(*, demonstration: Demonstration, text: str) -> None:
    if not text.strip():
        raise ApplicationError("The edited text is empty; reject instead.", code=ErrorCode.EMPTY)
    limit = demonstration.prompt.project.max_demonstration_chars
    if len(text) > limit:
        raise ApplicationError(
            f"The edited text has {len(text):,} characters; this project allows {limit:,}.",
            code=ErrorCode.TOO_LONG,
        )
    if text != demonstration.text:
        demonstration.original_text = demonstration.original_text or demonstration.text
        demonstration.text = text
