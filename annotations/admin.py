from django.contrib import admin

from annotations import models


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "k_min", "k_max", "labelers_per_item", "created_at"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(models.LabelSchema)
class LabelSchemaAdmin(admin.ModelAdmin):
    list_display = ["project", "version", "created_by", "created_at"]


@admin.register(models.Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "source", "customer_id", "category", "split", "pii"]
    list_filter = ["project", "source", "split", "category", "pii"]
    search_fields = ["text", "customer_id"]
    raw_id_fields = ["created_by", "import_job"]


@admin.register(models.Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "project",
        "state",
        "progress_done",
        "progress_total",
        "created_at",
    ]
    list_filter = ["kind", "state"]


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "path", "created_at"]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["item", "labeler", "state", "expires_at"]
    list_filter = ["state"]
    raw_id_fields = ["item", "labeler"]


for model in (
    models.Demonstration,
    models.Ranking,
    models.ComparisonTask,
    models.Completion,
    models.Conversation,
    models.DatasetExport,
    models.WorkItem,
    models.PromptAnnotation,
):
    admin.site.register(model)
