from django.http import HttpRequest

from annotations.roles import PERMISSIONS, user_can


def roles(request: HttpRequest) -> dict:
    """`can.manage`, `can.train`, ... for menus; the views check again."""
    user = getattr(request, "user", None)
    return {"can": {action: user_can(user, action) for action in PERMISSIONS}}
