from typing import Any

from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_migrate, pre_delete


def _grant_admin_group(**kwargs: Any) -> None:
    """The admin role may use every page of the Django admin (users, groups, all our data)."""
    from django.contrib.auth.models import Group, Permission

    from annotations.roles import Role, ensure_role_groups

    ensure_role_groups()
    Group.objects.get(name=Role.ADMIN).permissions.set(Permission.objects.all())


def _forget_roles_on_membership_change(
    *, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """user.groups.add/remove/set/clear, or (reverse) group.user_set.add/remove/clear."""
    from annotations.roles import roles_forget

    if not reverse:
        if action in ("post_add", "post_remove", "post_clear"):
            roles_forget([instance.pk])
    elif action == "pre_clear":
        roles_forget(list(instance.user_set.values_list("pk", flat=True)))
    elif action in ("post_add", "post_remove"):
        roles_forget(list(pk_set or ()))


def _forget_roles_of_group(*, instance: Any, **kwargs: Any) -> None:
    from annotations.roles import roles_forget

    roles_forget(list(instance.user_set.values_list("pk", flat=True)))


class AnnotationsConfig(AppConfig):
    name = "annotations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        post_migrate.connect(_grant_admin_group, sender=self)
        m2m_changed.connect(
            _forget_roles_on_membership_change, sender=get_user_model().groups.through
        )
        pre_delete.connect(_forget_roles_of_group, sender=Group)
