from django.db.models import Count, QuerySet

from annotations.models import ModelVersion


def model_versions_list(*, kind: str | None = None) -> QuerySet[ModelVersion]:
    versions = ModelVersion.objects.select_related("parent", "job").annotate(
        outputs=Count("completions")
    )
    if kind:
        versions = versions.filter(kind=kind)
    return versions.order_by("-created_at", "name")
