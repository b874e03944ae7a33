from annotations.models.jobs import DatasetExport, Job, JobMetric
from annotations.models.labels import (
    Conversation,
    Demonstration,
    PromptAnnotation,
    Ranking,
    Turn,
)
from annotations.models.outputs import ComparisonTask, Completion, ModelVersion
from annotations.models.projects import CustomerSplit, LabelSchema, Project
from annotations.models.prompts import Prompt
from annotations.models.work import Assignment, WorkItem

__all__ = [
    "Assignment",
    "ComparisonTask",
    "Completion",
    "Conversation",
    "CustomerSplit",
    "DatasetExport",
    "Demonstration",
    "Job",
    "JobMetric",
    "LabelSchema",
    "ModelVersion",
    "Project",
    "Prompt",
    "PromptAnnotation",
    "Ranking",
    "Turn",
    "WorkItem",
]
