"""API token login through the hot path: the token, its user and the user's roles."""

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


class HotPathTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, reading the token, its user and the roles that every API
    permission check needs in one hot-path operation."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        from annotations.hotpath import hot_path  # DRF imports this module with its settings

        found = hot_path().token_user(key=key)
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, token = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, token
