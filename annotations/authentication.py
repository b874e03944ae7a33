"""API token login: the token, its user and the user's roles in one statement."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from annotations.roles import roles_cache
from annotations.rows import columns, fetch_one, instance


class RoleTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, with the roles that every API permission check needs read
    in the same statement (PostgreSQL); the portable path is DRF's own."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        if connection.vendor != "postgresql":
            user, token = super().authenticate_credentials(key)
            return user, token
        User = get_user_model()
        row = fetch_one(
            f"""
            SELECT {columns(User, "u")}, t.created,
                   ARRAY(SELECT g.name FROM auth_user_groups ug
                         JOIN auth_group g ON g.id = ug.group_id WHERE ug.user_id = u.id)
            FROM authtoken_token t JOIN {User._meta.db_table} u ON u.id = t.user_id
            WHERE t.key = %s
            """,  # noqa: S608 (column lists from the models)
            [key],
        )
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, end = instance(User, row)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        roles_cache(user, row[end + 1])
        token = Token.from_db(None, ["key", "user_id", "created"], [key, user.pk, row[end]])
        token.user = user
        return user, token
