from typing import Any

from django.core.management.base import BaseCommand

from annotations.demo import demo_load


class Command(BaseCommand):
    help = "Load the demo project, prompts and one user per role (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_load()
        if result["prompts"]:
            self.stdout.write(
                f"Demo project '{result['project'].name}' with {result['prompts']} prompts."
            )
        if result["passwords"]:
            self.stdout.write(self.style.WARNING("Logins (shown once; change them in the admin):"))
            for username, password in result["passwords"].items():
                self.stdout.write(f"  {username:<10} {password}")
        else:
            self.stdout.write(
                "Demo users exist already; their passwords are unchanged "
                "(manage.py changepassword USER to set one)."
            )
