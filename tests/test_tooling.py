"""The tooling around the code: the Hypothesis profile, pre-commit with the pinned linters, the
image's build context (what the Dockerfile needs, nothing secret). Nothing here needs the
network."""

import os
import re
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import yaml
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent


def test_property_tests_run_the_profile_asked_for_ci_by_default():
    """Registered in tests/conftest.py: "ci" (the default) draws the same examples on every run,
    with no deadline and no example database; "dev" draws random ones."""
    profile = settings.default
    expected = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    assert (profile.derandomize, profile.deadline) == (expected.derandomize, expected.deadline)
    ci = settings.get_profile("ci")
    assert (ci.derandomize, ci.deadline, ci.database) == (True, None, None)


def _pins() -> dict[str, str]:
    text = (ROOT / "requirements" / "dev.txt").read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", text, flags=re.MULTILINE))


def test_pre_commit_runs_the_pinned_linters_and_its_config_is_valid():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    pins = _pins()
    for hook_id, tool in [("ruff-check", "ruff"), ("ruff-format", "ruff"), ("djlint", "djlint")]:
        assert hooks[hook_id]["additional_dependencies"] == [f"{tool}=={pins[tool]}"], hook_id
    assert "scripts/check_access.py" in hooks["check-access"]["entry"]
    assert "pre-commit" in pins
    checked = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or a folder above it decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for line in patterns:
        pattern = line.removeprefix("!")
        anywhere = pattern.removeprefix("**/")
        if any(
            fnmatch(prefix, pattern) or fnmatch(prefix.split("/")[-1], anywhere)
            if pattern.startswith("**/")
            else fnmatch(prefix, pattern)
            for prefix in prefixes
        ):
            ignored = not line.startswith("!")
    return ignored


def test_docker_context_keeps_what_the_image_needs_and_no_secrets():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    needed = ("requirements/", "annotations/", "labelapp/", "models_service/", "templates/")
    needed += ("static/", "scripts/", "manage.py", "package.json", "package-lock.json")
    kept = [path for path in tracked if path.startswith(needed)]
    assert len(kept) > 100
    assert [path for path in kept if _ignored(path, patterns)] == []
    assert not _ignored(".env.example", patterns)
    for path in (
        ".env",
        ".env.production",
        ".git/config",
        ".venv/bin/python",
        "node_modules/chart.js/package.json",
        "var/labelapp.sqlite3",
        "var/media/exports/x.jsonl",
        "annotations/__pycache__/models.cpython-311.pyc",
        ".pytest_cache/v/cache",
        ".hypothesis/examples/x",
        "tests/conftest.py",
    ):
        assert _ignored(path, patterns), path
