"""Model versions: the app's registry of policies and reward models, mirrored into the file the
inference service reads (`<LABELAPP_MODELS_DIR>/registry.json`), so a new version is served
without restarting the service."""

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from annotations.errors import ApplicationError, ErrorCode
from annotations.models import ModelVersion
from annotations.models.outputs import ModelKind

BUILTIN_MODELS = (("tiny", ModelKind.POLICY), ("tiny-rm", ModelKind.REWARD))
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")


def registry_file() -> Path:
    return Path(settings.LABELAPP_MODELS_DIR) / "registry.json"


def model_registry_write() -> Path:
    """Write {name: directory} of every version with local weights, atomically."""
    entries = dict(
        ModelVersion.objects.exclude(path="").order_by("name").values_list("name", "path")
    )
    target = registry_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".registry-", suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump(entries, out, indent=2, sort_keys=True)
    os.replace(temporary, target)
    return target


def model_version_register(
    *,
    name: str,
    kind: str = ModelKind.POLICY,
    path: str = "",
    hub_id: str = "",
    parent: ModelVersion | None = None,
    job: Any = None,
    metrics: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register a model version; the service picks it up from the registry file after commit."""
    if not _NAME.match(name):
        raise ApplicationError(
            f"Model name {name!r} is not usable: use letters, digits, '.', '_', ':' or '-' "
            "(at most 200 characters).",
            code=ErrorCode.INVALID_MODEL_NAME,
        )
    if kind not in ModelKind.values:
        raise ApplicationError(
            f"Model kind must be one of {ModelKind.values}.", code=ErrorCode.INVALID
        )
    if path and not (Path(path) / "config.json").is_file():
        raise ApplicationError(
            f"No Hugging Face model at {path} (config.json is missing).",
            code=ErrorCode.INVALID_MODEL_PATH,
        )
    if ModelVersion.objects.filter(name=name).exists():
        raise ApplicationError(
            f"A model named {name!r} exists already.", code=ErrorCode.DUPLICATE_MODEL
        )
    version = ModelVersion.objects.create(
        name=name,
        kind=kind,
        path=str(Path(path).resolve()) if path else "",
        hub_id=hub_id,
        parent=parent,
        job=job,
        metrics=metrics or {},
    )
    transaction.on_commit(model_registry_write)
    return version


def model_versions_ensure_builtin() -> None:
    """The service's built-in tiny policy and reward model, registered by name (no path)."""
    for name, kind in BUILTIN_MODELS:
        ModelVersion.objects.get_or_create(name=name, defaults={"kind": kind})


def model_versions_by_name(*, names: list[str], kind: str = ModelKind.POLICY) -> list[ModelVersion]:
    """The versions with these names, in order; ApplicationError naming any unknown one."""
    found = {v.name: v for v in ModelVersion.objects.filter(name__in=names, kind=kind)}
    unknown = [name for name in names if name not in found]
    if unknown:
        known = list(
            ModelVersion.objects.filter(kind=kind).order_by("name").values_list("name", flat=True)
        )
        raise ApplicationError(
            f"Unknown model {', '.join(map(repr, unknown))}; registered {kind} models: "
            f"{', '.join(known) or 'none'}.",
            code=ErrorCode.UNKNOWN_MODEL,
        )
    return [found[name] for name in names]
