from typing import Any

from django.db.models import Count, Q, QuerySet

from annotations.models import LabelSchema, Project, Prompt


def label_schema_current(*, project: Project) -> LabelSchema:
    """The project's newest label schema version (every project has one from its creation)."""
    return project.schemas.order_by("-version")[0]


def project_prompt_counts(*, project: Project) -> dict[str, Any]:
    """Prompt counts per split and source, in one query."""
    rows = (
        Prompt.objects.filter(project=project)
        .values("split", "source")
        .annotate(n=Count("id"), pii=Count("id", filter=Q(pii=True)))
    )
    table: dict[str, dict[str, int]] = {
        s: {"labeler": 0, "customer": 0} for s in ("train", "valid", "test")
    }
    total = pii = 0
    for row in rows:
        table[row["split"]][row["source"]] = row["n"]
        total += row["n"]
        pii += row["pii"]
    return {"table": table, "total": total, "pii": pii}


def prompts_search(*, project: Project, query: str = "", split: str = "") -> QuerySet[Prompt]:
    prompts = Prompt.objects.filter(project=project).order_by("-id")
    if split:
        prompts = prompts.filter(split=split)
    if query.strip():
        prompts = prompts.filter(text__icontains=query.strip())
    return prompts.only(
        "id",
        "text",
        "customer_id",
        "source",
        "category",
        "split",
        "pii",
        "token_count",
        "created_at",
    )
