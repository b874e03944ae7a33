"""Export a dataset snapshot from a shell, synchronously, and print its manifest summary."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.errors import ApplicationError
from annotations.exports.filters import FORMATS
from annotations.models import Project
from annotations.models.jobs import ExportKind
from annotations.services.exports import export_create, export_run


class Command(BaseCommand):
    help = (
        "Write a versioned dataset snapshot (the same as the export job, run here). "
        "Example: export_dataset --project demo --kind rm_pairs --split train --split valid"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument("--kind", required=True, choices=ExportKind.values)
        parser.add_argument("--format", default="jsonl", choices=list(FORMATS))
        parser.add_argument("--split", action="append", default=[], dest="splits")
        parser.add_argument("--source", action="append", default=[], dest="sources")
        parser.add_argument("--labeler", action="append", type=int, default=[], dest="labelers")
        parser.add_argument("--from", dest="date_from", help="YYYY-MM-DD, inclusive.")
        parser.add_argument("--to", dest="date_to", help="YYYY-MM-DD, inclusive.")
        parser.add_argument(
            "--submitted-demonstrations",
            action="store_true",
            help="SFT: take submitted demonstrations too, not only accepted ones.",
        )
        parser.add_argument("--consensus", action="store_true")
        parser.add_argument("--skip-none-acceptable", action="store_true")
        parser.add_argument("--chat", action="store_true", help="SFT rows as messages.")
        parser.add_argument("--user", help="Username recorded as the author.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {options['project']!r}.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user {options['user']!r}.")
        filters = {
            "splits": options["splits"],
            "sources": options["sources"],
            "labelers": options["labelers"],
            "date_from": options["date_from"],
            "date_to": options["date_to"],
            "accepted_only": not options["submitted_demonstrations"],
            "consensus": options["consensus"],
            "skip_none_acceptable": options["skip_none_acceptable"],
            "chat": options["chat"],
        }
        try:
            export = export_create(
                project=project,
                user=user,
                kind=options["kind"],
                format=options["format"],
                filters=filters,
                enqueue=False,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        assert export.job_id is not None, "export_create makes the export's job"
        if export_run(job_id=export.job_id) is None:
            raise CommandError("The export was cancelled.")
        export.refresh_from_db()
        self._summary(export.manifest, export.directory)

    def _summary(self, manifest: dict[str, Any], directory: str) -> None:
        counts = manifest["counts"]
        self.stdout.write(
            f"{manifest['project']} {manifest['kind']} v{manifest['version']}: "
            f"{counts['total_rows']} rows in {directory}"
        )
        for split, sources in counts["rows"].items():
            prompts = counts["prompts"].get(split, {})
            parts = ", ".join(
                f"{source} {rows} rows / {prompts.get(source, 0)} prompts"
                for source, rows in sources.items()
            )
            self.stdout.write(f"  {split}: {parts}")
        for info in manifest["files"]:
            self.stdout.write(
                f"  {info['name']}: {info['rows']} rows, {info['bytes']} bytes, "
                f"sha256 {info['sha256']}"
            )
        self.stdout.write(f"  code {manifest['code_version']}, created {manifest['created_at']}")
