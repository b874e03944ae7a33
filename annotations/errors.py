"""One error type for rule violations, and one error shape for the API and the pages.

API shape: {"error": {"code": "...", "message": "...", "details": {...}}}.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A request broke a rule. The message says what was wrong and what to do instead."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        details: dict[str, Any] | None = None,
        status_code: int = 400,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}
        self.status_code = status_code

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
