"""The columns of every export kind (Arrow schemas; JSONL rows carry the same keys)."""

from typing import Any

import pyarrow as pa

from annotations.exports.filters import ExportFilters
from annotations.models.jobs import ExportKind

Row = dict[str, Any]

_ID = pa.int64()
_STR = pa.string()
_MESSAGES = pa.list_(pa.struct([("role", _STR), ("content", _STR)]))
_TRACE = [("split", _STR), ("source", _STR), ("prompt_id", _ID)]
_RANKING_TRACE = [("comparison_id", _ID), ("ranking_id", _ID), ("labeler_id", _ID)]
SCHEMAS: dict[str, pa.Schema] = {
    "sft": pa.schema(
        [
            ("prompt", _STR),
            ("completion", _STR),
            *_TRACE,
            ("demonstration_id", _ID),
            ("labeler_id", _ID),
        ]
    ),
    "sft_chat": pa.schema(
        [
            ("messages", _MESSAGES),
            *_TRACE,
            ("demonstration_id", _ID),
            ("conversation_id", _ID),
            ("labeler_id", _ID),
        ]
    ),
    ExportKind.RM_PAIRS: pa.schema(
        [
            ("prompt", _STR),
            ("chosen", _STR),
            ("rejected", _STR),
            *_TRACE,
            *_RANKING_TRACE,
            ("labeler_count", _ID),
            ("chosen_id", _ID),
            ("rejected_id", _ID),
        ]
    ),
    ExportKind.RM_RANKINGS: pa.schema(
        [
            ("prompt", _STR),
            ("completions", pa.list_(_STR)),
            ("rank_groups", pa.list_(pa.list_(_ID))),
            *_TRACE,
            *_RANKING_TRACE,
            ("labeler_count", _ID),
            ("completion_ids", pa.list_(_ID)),
            ("none_acceptable", pa.bool_()),
        ]
    ),
    ExportKind.PPO_PROMPTS: pa.schema([("prompt", _STR), *_TRACE, ("category", _STR)]),
    ExportKind.EVALUATION: pa.schema(
        [
            ("prompt", _STR),
            ("prompt_id", _ID),
            ("category", _STR),
            ("split", _STR),
            ("source", _STR),
        ]
    ),
}


def schema_for(*, kind: str, filters: ExportFilters) -> pa.Schema:
    if kind == ExportKind.SFT and filters.chat:
        return SCHEMAS["sft_chat"]
    return SCHEMAS[kind]
