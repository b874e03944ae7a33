"""Who may do what: the roles (Django groups) and every check of them, in one place."""

from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import wraps
from typing import Any

from django.contrib.auth.models import AnonymousUser, Group
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

from annotations.users import AnyUser, User


class Role(StrEnum):
    LABELER = "labeler"
    REVIEWER = "reviewer"  # a labeler who may also review demonstrations
    ADMIN = "admin"
    ENGINEER = "engineer"


# What each action needs. Pages and APIs name an action; only this table says who may do it.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "label": frozenset({Role.LABELER, Role.REVIEWER}),
    "review": frozenset({Role.REVIEWER, Role.ADMIN}),
    "manage": frozenset({Role.ADMIN}),
    "import_prompts": frozenset({Role.ADMIN}),
    "view_jobs": frozenset({Role.ADMIN, Role.ENGINEER}),
    "export": frozenset({Role.ADMIN, Role.ENGINEER}),
    "generate": frozenset({Role.ENGINEER, Role.ADMIN}),
    "train": frozenset({Role.ENGINEER}),
}


ROLES_CACHE_SECONDS = 300  # a safety net; every change of a user's groups drops the entry


def _roles_key(user_id: int) -> str:
    return f"roles:{user_id}"


def user_roles(user: AnyUser | None) -> frozenset[Role]:
    """The user's roles: kept on the user object for the request and in the shared cache across
    requests (dropped whenever the user's groups change, see `roles_forget`)."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return frozenset()
    roles: frozenset[Role] | None = user.__dict__.get("_labelapp_roles")
    if roles is None:
        names = cache.get(_roles_key(user.pk))
        if names is None:
            names = list(user.groups.values_list("name", flat=True))
            cache.set(_roles_key(user.pk), names, ROLES_CACHE_SECONDS)
        roles = roles_remember(user, names)
    return roles


def roles_remember(user: User, group_names: Iterable[str]) -> frozenset[Role]:
    """Keep the user's roles, from these group names, on the user object for the request."""
    roles = frozenset(Role(name) for name in group_names if name in Role._value2member_map_)
    if user.is_superuser:
        roles = roles | {Role.ADMIN}
    user.__dict__["_labelapp_roles"] = roles
    return roles


def roles_forget(user_ids: list[int]) -> None:
    """Drop cached roles (connected to every change of user-group membership in apps.py): now,
    and again when the transaction commits, so that no request caches what it rolls back to."""
    keys = [_roles_key(pk) for pk in user_ids]
    if keys:
        cache.delete_many(keys)
        transaction.on_commit(lambda: cache.delete_many(keys))


def user_can(user: AnyUser | None, action: str) -> bool:
    return bool(user_roles(user) & PERMISSIONS[action])


def ensure_role_groups() -> None:
    for role in Role:
        Group.objects.get_or_create(name=role.value)


def user_set_roles(*, user: User, roles: list[Role]) -> None:
    """Give the user exactly these roles. Admins are staff, so the Django admin lets them in."""
    ensure_role_groups()
    user.groups.set(Group.objects.filter(name__in=[r.value for r in roles]))
    user.is_staff = Role.ADMIN in roles or user.is_superuser
    user.save(update_fields=["is_staff"])
    user.__dict__.pop("_labelapp_roles", None)


def require(action: str) -> Callable:
    """View decorator: anonymous users go to the login page; users without the role get 403."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_can(request.user, action):
                raise PermissionDenied(f"This page needs the {action!r} permission.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def api_permission(action: str) -> type[BasePermission]:
    """A DRF permission class for one action of PERMISSIONS."""

    class _Permission(BasePermission):
        message = f"Your account may not do this (it needs the {action!r} permission)."

        def has_permission(self, request: Any, view: Any) -> bool:
            return bool(request.user and request.user.is_authenticated) and user_can(
                request.user, action
            )

    _Permission.__name__ = f"Can{action.title().replace('_', '')}"
    return _Permission
