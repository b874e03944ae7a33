"""Model outputs from a JSONL file -> comparison tasks, without the inference service.

Each line: {"prompt_id": 12} or {"prompt": "...", "customer_id": "..."}, "outputs": K items,
each a string (written by "model") or {"text": "...", "model": "..."}. All or nothing: any
invalid line imports nothing and the report names the line and what to fix.
"""

import json
from pathlib import Path
from typing import Any

from django.db import transaction

from annotations.errors import ApplicationError, ErrorCode
from annotations.intake.pipeline import PromptIntake
from annotations.intake.rows import PromptRow
from annotations.intake.text import dedup_key
from annotations.models import Job, Project, Prompt
from annotations.models.jobs import JobKind
from annotations.services.comparisons import comparisons_store
from annotations.services.jobs import job_create, job_fail, job_start, job_succeed
from annotations.users import User

MAX_ERRORS = 200


def _outputs(raw: Any, default_model: Any, k_range: tuple[int, int]) -> tuple[list, str | None]:
    low, high = k_range
    if not isinstance(raw, list) or not low <= len(raw) <= high:
        count = len(raw) if isinstance(raw, list) else "no list of"
        return [], f"'outputs' must list {low}..{high} outputs (K); it has {count}"
    rows = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            text, model = item, default_model
        elif isinstance(item, dict):
            text, model = item.get("text", ""), item.get("model", default_model)
        else:
            return [], f'\'outputs\'[{index}] must be a string or {{"text", "model"}}'
        if not isinstance(text, str) or not text.strip():
            return [], f"'outputs'[{index}] has no text"
        if not isinstance(model, str) or not model.strip():
            return [], f"'outputs'[{index}] needs a model name ('model' on the line or the output)"
        rows.append({"text": text, "model_name": model.strip(), "params": {"source": "import"}})
    return rows, None


def _read(path: Path, project: Project) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(valid rows, errors) of the whole file."""
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    by_id = set(Prompt.objects.filter(project=project).values_list("id", flat=True))
    with path.open("rb") as stream:
        for line_no, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                errors.append(
                    {"line": line_no, "message": f"Line {line_no} is not valid JSON ({exc})."}
                )
                continue
            problem = None
            if not isinstance(value, dict):
                problem = "must be a JSON object"
            else:
                outputs, problem = _outputs(
                    value.get("outputs"), value.get("model"), (project.k_min, project.k_max)
                )
                prompt_id, text = value.get("prompt_id"), value.get("prompt")
                if problem is None and prompt_id is not None:
                    if not isinstance(prompt_id, int) or prompt_id not in by_id:
                        problem = f"prompt_id {prompt_id!r} is not a prompt of this project"
                elif problem is None and not (isinstance(text, str) and text.strip()):
                    problem = "give 'prompt_id' or the 'prompt' text"
            if problem:
                errors.append({"line": line_no, "message": f"Line {line_no}: {problem}."})
            else:
                rows.append(
                    {
                        "line": line_no,
                        "prompt_id": prompt_id,
                        "prompt": text,
                        "customer_id": value.get("customer_id"),
                        "outputs": outputs,
                    }
                )
    return rows, errors


def _resolve_prompts(project: Project, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill prompt_id for rows that give text: a stored prompt with the same dedup key, or a new
    prompt through the intake filters (which needs a customer_id)."""
    errors = []
    keyed: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["prompt_id"] is None:
            key = dedup_key(row["prompt"], project.dedup_prefix_chars)
            first = keyed.setdefault(key, row)
            if first is not row:
                errors.append(
                    {
                        "line": row["line"],
                        "message": f"Line {row['line']}: the same "
                        f"prompt as line {first['line']}; one comparison each.",
                    }
                )
    stored = dict(
        Prompt.objects.filter(project=project, dedup_key__in=keyed).values_list("dedup_key", "id")
    )
    new_rows = []
    for key, row in keyed.items():
        if key in stored:
            row["prompt_id"] = stored[key]
        elif row["customer_id"] is None:
            errors.append(
                {
                    "line": row["line"],
                    "message": f"Line {row['line']}: the prompt is not "
                    "in this project; give its 'customer_id' to add it.",
                }
            )
        else:
            new_rows.append(
                PromptRow(line=row["line"], text=row["prompt"], customer_id=str(row["customer_id"]))
            )
    if new_rows:
        intake = PromptIntake(project=project)
        created = {p.dedup_key: p.pk for p in intake.add(new_rows)}
        for reason in intake.report.rejected:
            errors.append(
                {
                    "line": reason["line"],
                    "message": f"Line {reason['line']}: the prompt "
                    f"was refused by the intake filters ({reason['reason']}).",
                }
            )
        for key, row in keyed.items():
            row["prompt_id"] = row["prompt_id"] or created.get(key)
    return errors


def outputs_import_file(*, project: Project, path: Path, job: Job | None = None) -> dict[str, Any]:
    """Create comparison tasks from a file of model outputs; all or nothing."""
    rows, errors = _read(path, project)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        errors += _resolve_prompts(locked, rows)
        seen: dict[int, int] = {}
        for row in rows:
            if row["prompt_id"] is None:
                continue  # its line has an error already
            if row["prompt_id"] in seen:
                errors.append(
                    {
                        "line": row["line"],
                        "message": f"Line {row['line']}: the same "
                        f"prompt as line {seen[row['prompt_id']]}; one comparison each.",
                    }
                )
            seen.setdefault(row["prompt_id"], row["line"])
        report = {
            "rows": len(rows) + len(errors),
            "comparisons": 0,
            "errors": sorted(errors, key=lambda e: e["line"])[:MAX_ERRORS],
        }
        if errors or not rows:
            transaction.set_rollback(True)
            message = (
                f"{len(errors)} lines are not valid; nothing was imported."
                if errors
                else "The file holds no outputs."
            )
            raise ApplicationError(message, code=ErrorCode.INVALID_ROWS, details={"report": report})
        created = comparisons_store(
            project=locked, job=job, outputs={r["prompt_id"]: r["outputs"] for r in rows}
        )
        report["comparisons"] = len(created)
    return report


def outputs_import_start(*, project: Project, user: User, path: Path, filename: str) -> Job:
    return job_create(
        kind=JobKind.GENERATION,
        project=project,
        user=user,
        params={"source": "file", "path": str(path), "filename": filename},
    )


def outputs_import_run(*, job_id: int) -> None:
    job = job_start(job_id=job_id)
    if job is None:
        return
    try:
        assert job.project is not None, "an import job belongs to a project"
        report = outputs_import_file(project=job.project, path=Path(job.params["path"]), job=job)
    except ApplicationError as exc:
        job_fail(job_id=job_id, message=exc.message, result=exc.details.get("report"))
        return
    except FileNotFoundError:
        job_fail(job_id=job_id, message="The uploaded file is gone; upload it again.")
        return
    job_succeed(
        job_id=job_id,
        result=report,
        message=f"Created {report['comparisons']} comparison tasks from the file.",
    )
