"""What an export selects: validated filters, stored as JSON in DatasetExport.filters."""

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from django.db.models import Q

from annotations.errors import ApplicationError, ErrorCode
from annotations.models.jobs import ExportKind
from annotations.models.projects import Split
from annotations.models.prompts import PromptSource

FORMATS: dict[str, str] = {"jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz", "parquet": ".parquet"}
FORMAT_CHOICES = [
    ("jsonl", "JSONL"),
    ("jsonl.gz", "JSONL, gzipped"),
    ("parquet", "Parquet"),
]
RANKING_KINDS = frozenset({ExportKind.RM_PAIRS, ExportKind.RM_RANKINGS})
PROMPT_KINDS = frozenset({ExportKind.PPO_PROMPTS, ExportKind.EVALUATION})


@dataclass(frozen=True)
class ExportFilters:
    """Which rows an export holds. Empty tuples mean "all".

    splits, sources: of the prompt. date_from/date_to (inclusive days): when a demonstration or
    ranking was submitted, or when a prompt was created (prompt kinds). labelers: authors of
    demonstrations and rankings, or writers of prompts (prompt kinds). accepted_only: SFT takes
    reviewed-and-accepted demonstrations only (else submitted ones too). consensus: one Tideman
    ranking per comparison instead of every labeler's. skip_none_acceptable: drop rankings whose
    labeler found no output acceptable. chat: SFT rows as {"messages": [...]}, conversations
    included.
    """

    splits: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    labelers: tuple[int, ...] = ()
    accepted_only: bool = True
    consensus: bool = False
    skip_none_acceptable: bool = False
    chat: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any], *, kind: str) -> "ExportFilters":
        """Validated filters; ApplicationError names the bad field and the allowed values."""
        known = sorted(cls.__dataclass_fields__)
        unknown = set(params) - set(known)
        if unknown:
            raise ApplicationError(
                f"Unknown export filters {sorted(unknown)}; use {known}.",
                code=ErrorCode.INVALID_FILTERS,
            )
        splits = _choices(params.get("splits"), Split.values, "splits")
        if kind == ExportKind.EVALUATION and not splits:
            splits = (Split.TEST,)  # an evaluation set is held out unless asked otherwise
        filters = cls(
            splits=splits,
            sources=_choices(params.get("sources"), PromptSource.values, "sources"),
            date_from=_day(params.get("date_from"), "date_from"),
            date_to=_day(params.get("date_to"), "date_to"),
            labelers=tuple(sorted({_integer(v) for v in params.get("labelers") or ()})),
            accepted_only=bool(params.get("accepted_only", True)),
            consensus=bool(params.get("consensus", False)),
            skip_none_acceptable=bool(params.get("skip_none_acceptable", False)),
            chat=bool(params.get("chat", False)),
        )
        if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
            raise ApplicationError(
                f"date_from {filters.date_from} is after date_to {filters.date_to}; swap them.",
                code=ErrorCode.INVALID_FILTERS,
            )
        return filters

    def as_params(self) -> dict[str, Any]:
        data = asdict(self)
        data["splits"], data["sources"] = list(self.splits), list(self.sources)
        data["labelers"] = list(self.labelers)
        for key in ("date_from", "date_to"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def _choices(value: Any, allowed: list[str], name: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else list(value or ())
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ApplicationError(
            f"{name} {bad} are not valid; choose from {allowed}.", code=ErrorCode.INVALID_FILTERS
        )
    return tuple(v for v in allowed if v in values)


def _day(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ApplicationError(
            f"{name} {value!r} is not a date; write YYYY-MM-DD.", code=ErrorCode.INVALID_FILTERS
        ) from None


def _integer(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApplicationError(
            f"Labeler id {value!r} is not a number.", code=ErrorCode.INVALID_FILTERS
        ) from None


def prompt_q(filters: ExportFilters, prefix: str) -> Q:
    q = Q()
    if filters.splits:
        q &= Q(**{f"{prefix}split__in": filters.splits})
    if filters.sources:
        q &= Q(**{f"{prefix}source__in": filters.sources})
    return q


def dates_q(filters: ExportFilters, name: str) -> Q:
    q = Q()
    if filters.date_from:
        q &= Q(**{f"{name}__date__gte": filters.date_from})
    if filters.date_to:
        q &= Q(**{f"{name}__date__lte": filters.date_to})
    return q
