import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.roles import Role, user_set_roles


class Command(BaseCommand):
    help = "Create a user with roles; prints the generated password once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--role", action="append", choices=[r.value for r in Role], required=True
        )
        parser.add_argument("--password", help="default: a generated one, printed once")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        if users.objects.filter(username=options["username"]).exists():
            raise CommandError(f"User {options['username']!r} exists already.")
        password = options["password"] or secrets.token_urlsafe(12)
        user = users.objects.create_user(username=options["username"], password=password)
        user_set_roles(user=user, roles=[Role(r) for r in options["role"]])
        self.stdout.write(f"{user.username} ({', '.join(options['role'])}): password {password}")
