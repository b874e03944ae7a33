import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.errors import ApplicationError
from annotations.intake.rows import FORMATS, guess_format
from annotations.models import Project
from annotations.services.prompts import prompt_import_file


class Command(BaseCommand):
    help = "Import prompts from a JSONL or CSV file (the same rules as the upload page)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project slug")
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=FORMATS)
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid rows even when some rows are invalid",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {options['project']!r}.")
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        fmt = options["format"] or guess_format(path.name)
        if fmt is None:
            raise CommandError("Pass --format jsonl or --format csv.")
        try:
            report = prompt_import_file(
                project=project, path=path, fmt=fmt, skip_invalid=options["skip_invalid"]
            )
        except ApplicationError as exc:
            report = exc.details.get("report") or {}
            for error in report.get("errors", [])[:50]:
                self.stderr.write(error["message"])
            raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.stdout.write(
            self.style.SUCCESS(f"Imported {report['imported']} of {report['rows']} rows.")
        )
        for key in (
            "invalid",
            "duplicates",
            "over_cap",
            "pii_flagged",
            "pii_removed_from_train",
            "too_long",
        ):
            self.stdout.write(f"  {key.replace('_', ' ')}: {report[key]}")
        for split, count in report["per_split"].items():
            self.stdout.write(f"  into {split}: {count}")
