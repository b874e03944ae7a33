from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.errors import ApplicationError
from annotations.models import Project
from annotations.models.projects import Split, WorkKind
from annotations.services.work_admin import prompt_work_queue, prompt_writing_queue


class Command(BaseCommand):
    help = (
        "Queue work: demonstrations or prompt annotations for N prompts (filters: split, "
        "category, not yet queued), or K prompt-writing tasks."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project slug")
        parser.add_argument(
            "kind",
            choices=[WorkKind.DEMONSTRATION, WorkKind.PROMPT_ANNOTATION, WorkKind.PROMPT_WRITING],
        )
        parser.add_argument("count", type=int, help="prompts to queue, or tasks to create")
        parser.add_argument("--split", choices=Split.values, default="")
        parser.add_argument("--category", default="")
        parser.add_argument(
            "--include-queued",
            action="store_true",
            help="also queue prompts already queued for this kind",
        )
        parser.add_argument("--priority", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {options['project']!r}.")
        try:
            if options["kind"] == WorkKind.PROMPT_WRITING:
                items = prompt_writing_queue(
                    project=project, count=options["count"], priority=options["priority"]
                )
            else:
                items = prompt_work_queue(
                    project=project,
                    kind=options["kind"],
                    count=options["count"],
                    split=options["split"],
                    category=options["category"],
                    only_unqueued=not options["include_queued"],
                    priority=options["priority"],
                )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Queued {len(items)} {options['kind']} items."))
