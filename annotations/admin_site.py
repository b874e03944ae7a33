from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from annotations.roles import user_can


class LabelAdminSite(admin.AdminSite):
    site_header = "labelapp administration"
    site_title = "labelapp admin"

    def has_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and user_can(request.user, "manage")

    def admin_view(self, view: Callable, cacheable: bool = False) -> Any:
        inner = super().admin_view(view, cacheable)

        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            # A signed-in user without the admin role gets a plain 403, not a second login form.
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied("The admin pages are for admins.")
            return inner(request, *args, **kwargs)

        return update_wrapper(wrapper, inner)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if request.user.is_authenticated and not self.has_permission(request):
            raise PermissionDenied("The admin pages are for admins.")
        return super().login(request, extra_context)
