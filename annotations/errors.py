"""One error type for rule violations, and one error shape for the API and the pages.

API shape: {"error": {"code": "...", "message": "...", "details": {...}}}.
"""

from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ErrorCode(StrEnum):
    """Every rule a request can break, with the HTTP status it answers with and whether a refused
    submission keeps the labeler's text as a draft (so that nothing typed is lost)."""

    http_status: int
    keeps_draft: bool

    def __new__(cls, value: str, http_status: int = 400, keeps_draft: bool = False) -> "ErrorCode":
        member = str.__new__(cls, value)
        member._value_ = value
        member.http_status = http_status
        member.keeps_draft = keeps_draft
        return member

    ALREADY_REVIEWED = "already_reviewed", 409
    ALREADY_SUBMITTED = "already_submitted", 409
    ALREADY_WRITTEN = "already_written", 409
    CATEGORY_REQUIRED = "category_required", 400, True
    COMMENT_REQUIRED = "comment_required"
    COUNT = "count"
    DUPLICATE_COMPARISON = "duplicate_comparison"
    DUPLICATE_MODEL = "duplicate_model"
    DUPLICATE_MODELS = "duplicate_models"
    EMPTY = "empty"
    EMPTY_FILE = "empty_file"
    EXPORT_RUNNING = "export_running"
    FILE_TOO_LARGE = "file_too_large"
    FORBIDDEN = "forbidden", 403
    INCOMPLETE_PAIR = "incomplete_pair"
    INSTRUCTION_REQUIRED = "instruction_required"
    INVALID = "invalid"
    INVALID_BACKEND = "invalid_backend"
    INVALID_COUNT = "invalid_count"
    INVALID_DECISION = "invalid_decision"
    INVALID_FILTERS = "invalid_filters"
    INVALID_FORMAT = "invalid_format"
    INVALID_HYPERPARAMETERS = "invalid_hyperparameters"
    INVALID_K = "invalid_k"
    INVALID_KIND = "invalid_kind"
    INVALID_LAUNCH = "invalid_launch"
    INVALID_LIMIT = "invalid_limit"
    INVALID_MODEL_NAME = "invalid_model_name"
    INVALID_MODEL_PATH = "invalid_model_path"
    INVALID_OUTPUT = "invalid_output"
    INVALID_PRIORITY = "invalid_priority"
    INVALID_PROJECT = "invalid_project"
    INVALID_PROMPT = "invalid_prompt"
    INVALID_RANKING = "invalid_ranking"
    INVALID_ROWS = "invalid_rows"
    INVALID_SAMPLING = "invalid_sampling"
    INVALID_SCHEMA = "invalid_schema"
    JOB_FINISHED = "job_finished"
    K_OUT_OF_RANGE = "k_out_of_range"
    LEASE_LOST = "lease_lost", 409, True
    MODEL_NOT_LOCAL = "model_not_local"
    NO_MODELS = "no_models"
    NO_PROMPTS = "no_prompts"
    NO_RAY_CLUSTER = "no_ray_cluster"
    NO_REWARD = "no_reward"
    NO_ROLLOUT_SERVER = "no_rollout_server"
    NO_TRAIN = "no_train"
    NOT_FOUND = "not_found", 404
    NOT_RERUNNABLE = "not_rerunnable"
    OWN_WORK = "own_work", 403
    PROMPT_REJECTED = "prompt_rejected"
    REASON_REQUIRED = "reason_required"
    REVISION_CLOSED = "revision_closed", 409
    SKIPPED = "skipped", 409
    TEXT_REQUIRED = "text_required"
    TOO_FEW_PAIRS = "too_few_pairs"
    TOO_LONG = "too_long", 400, True
    TOO_MANY_MODELS = "too_many_models"
    UNKNOWN_FIELDS = "unknown_fields", 400, True
    UNKNOWN_FORMAT = "unknown_format"
    UNKNOWN_KIND = "unknown_kind"
    UNKNOWN_MODEL = "unknown_model"
    USE_CASE_REQUIRED = "use_case_required"
    WRONG_BASE_MODEL = "wrong_base_model"
    WRONG_DATASET = "wrong_dataset"
    WRONG_KIND = "wrong_kind"


class ApplicationError(Exception):
    """A request broke a rule. The message says what was wrong and what to do instead."""

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode = ErrorCode.INVALID,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}

    @property
    def status_code(self) -> int:
        return self.code.http_status

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def _validation_message(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            out += _validation_message(value, f"{prefix}{name}: " if name else prefix)
        return out
    if isinstance(detail, list):
        out = []
        for item in detail:
            out += _validation_message(item, prefix)
        return out
    return [f"{prefix}{detail}"]


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, reshaped so that every API error has the one error shape."""
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        messages = _validation_message(exc.detail)
        body = {
            "code": "invalid",
            "message": "; ".join(messages) or "The request is not valid.",
            "details": {"fields": exc.detail},
        }
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or "error"
        body = {"code": str(code), "message": str(detail), "details": {}}
    response.data = {"error": body}
    if response.status_code == status.HTTP_403_FORBIDDEN and body["code"] == "error":
        body["code"] = "permission_denied"
    return response
