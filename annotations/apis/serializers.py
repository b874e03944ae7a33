"""Output serializers shared by several APIs."""

from rest_framework import serializers

from annotations.models import Job, Project, Prompt


class ProjectOutput(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "slug",
            "guidelines",
            "k_min",
            "k_max",
            "labelers_per_item",
            "lease_minutes",
            "revision_window_minutes",
            "split_train",
            "split_valid",
            "split_test",
            "max_prompts_per_customer",
            "dedup_prefix_chars",
            "max_prompt_tokens",
            "max_prompt_chars",
            "max_demonstration_chars",
            "remove_pii_from_train",
            "work_priorities",
            "created_at",
        ]


class PromptOutput(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = [
            "id",
            "text",
            "messages",
            "source",
            "kind",
            "customer_id",
            "external_id",
            "category",
            "split",
            "pii",
            "pii_kinds",
            "token_count",
            "metadata",
            "created_at",
        ]


class JobOutput(serializers.ModelSerializer):
    project: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "project",
            "state",
            "params",
            "progress_done",
            "progress_total",
            "percent",
            "message",
            "result",
            "cancel_requested",
            "attempts",
            "heartbeat_at",
            "created_at",
            "started_at",
            "finished_at",
        ]
