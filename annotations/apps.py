from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _grant_admin_group(**kwargs: Any) -> None:
    """The admin role may use every page of the Django admin (users, groups, all our data)."""
    from django.contrib.auth.models import Group, Permission

    from annotations.roles import Role, ensure_role_groups

    ensure_role_groups()
    Group.objects.get(name=Role.ADMIN).permissions.set(Permission.objects.all())


class AnnotationsConfig(AppConfig):
    name = "annotations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_grant_admin_group, sender=self)
