"""The user types that the app's layers pass around (the default auth.User model)."""

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

AnyUser = User | AnonymousUser  # request.user: signed in or not


class AuthedRequest(HttpRequest):
    """A page request past `annotations.roles.require`: a signed-in user, and django-htmx's
    details of the request."""

    user: User  # narrowed by `require`
    htmx: HtmxDetails


def signed_in(user: AnyUser) -> User:
    """The signed-in user of a request that passed a role check (API permission classes let only
    signed-in users through); PermissionDenied otherwise."""
    if not isinstance(user, User):
        raise PermissionDenied("Sign in first.")
    return user
