from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from annotations import models
from annotations.errors import ApplicationError
from annotations.label_schema import validate_schema_config
from annotations.services.projects import label_schema_create
from annotations.users import User


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "k_min", "k_max", "labelers_per_item", "created_at"]
    prepopulated_fields = {"slug": ["name"]}


class LabelSchemaForm(forms.ModelForm):
    class Meta:
        model = models.LabelSchema
        fields = ["project", "config"]

    def clean_config(self) -> dict:
        try:
            return validate_schema_config(self.cleaned_data.get("config"))
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(models.LabelSchema)
class LabelSchemaAdmin(admin.ModelAdmin):
    """A schema version is never changed or deleted (every label names the version it was made
    with); a change is a new version, checked and numbered by label_schema_create."""

    form = LabelSchemaForm
    list_display = ["project", "version", "created_by", "created_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a whole project takes its versions with it; a version alone is never deleted.
        match = getattr(request, "resolver_match", None)
        own_pages = "annotations_labelschema_"
        return bool(match and match.url_name and not match.url_name.startswith(own_pages))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        assert isinstance(request.user, User)  # the admin site lets only signed-in admins in
        created = label_schema_create(project=obj.project, user=request.user, config=obj.config)
        obj.pk, obj.version = created.pk, created.version


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
