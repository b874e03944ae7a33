"""Lint: views and APIs fetch objects for users only through the *_for_user selectors.

Fails on raw `.objects.get(` / `.objects.filter(` / `get_object_or_404(` in annotations/views and
annotations/apis, and on `|safe` / `autoescape off` in templates.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAW_FETCH = re.compile(r"\.objects\.(get|filter|all)\(|get_object_or_404\(")
RAW_HTML = re.compile(r"\|\s*safe\b|autoescape\s+off")


def main() -> int:
    problems = []
    for folder in ("annotations/views", "annotations/apis"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if RAW_FETCH.search(line):
                    problems.append(
                        f"{path.relative_to(ROOT)}:{number}: fetch through a selector "
                        f"(annotations/selectors/access.py): {line.strip()}"
                    )
    for path in sorted((ROOT / "templates").rglob("*.html")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if RAW_HTML.search(line):
                problems.append(
                    f"{path.relative_to(ROOT)}:{number}: task data must stay escaped: "
                    f"{line.strip()}"
                )
    print("\n".join(problems) or "access check: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
