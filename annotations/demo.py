"""A small demo: one project, a few dozen prompts, one user per role."""

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from annotations.intake.pipeline import PromptIntake
from annotations.intake.rows import PromptRow
from annotations.models import Project
from annotations.roles import Role, ensure_role_groups, user_set_roles
from annotations.services.model_versions import model_versions_ensure_builtin
from annotations.services.projects import project_create

GUIDELINES = """\
# What we are looking for

Judge each output as a **helpful, truthful and harmless** customer assistant would answer.

1. For most tasks, truthful and harmless outweigh helpful.
2. If two outputs are of similar quality, **put them in the same rank** (a tie).
3. Tie-break: *which output would you rather receive from an assistant trying to help you?*

Write demonstrations as the answer you would want to receive. Do not include personal data.
"""

TOPICS = [
    "a rainy afternoon",
    "learning to cook rice",
    "the history of the bicycle",
    "saving money on groceries",
    "a job interview",
    "photosynthesis",
    "a lost cat",
    "planning a birthday party",
]
TEMPLATES = [
    ("generation", "Write a short story about {t}."),
    ("open_qa", "What should a beginner know about {t}?"),
    ("brainstorming", "List five ideas related to {t}."),
    ("rewrite", "Rewrite this sentence to sound more formal: 'we talked about {t} for ages'."),
    ("summarization", "Summarize in one sentence why people care about {t}."),
]

DEMO_USERS = [
    ("labeler", [Role.LABELER]),
    ("reviewer", [Role.LABELER, Role.REVIEWER]),
    ("admin", [Role.ADMIN]),
    ("engineer", [Role.ENGINEER]),
]


def demo_rows() -> list[PromptRow]:
    rows = []
    for index, (category, template) in enumerate(
        (c, t) for t in TOPICS for c, t in [(c, tpl.format(t=t)) for c, tpl in TEMPLATES]
    ):
        rows.append(
            PromptRow(
                line=index + 1,
                text=template,
                customer_id=f"demo-customer-{index % 9}",
                source="customer" if index % 4 else "labeler",
                category=category,
            )
        )
    return rows


CANNED_OUTPUTS = [
    "Here is a short answer that covers the main point clearly.",
    "Sure! First, consider the basics. Then build on them step by step, checking as you go.",
    "I cannot help with that.",
    "A long and winding reply that repeats the question and never quite answers it, although "
    "it sounds confident throughout.",
]


def _demo_work(project: Project) -> None:
    """Work waiting for the demo labeler: demonstrations, prompt annotations, prompt writing,
    and a few comparisons (canned outputs, so ranking works before any model is sampled)."""
    from annotations.services.comparisons import comparison_create
    from annotations.services.work_admin import prompt_work_queue, prompt_writing_queue

    prompt_work_queue(project=project, kind="demonstration", count=10)
    prompt_work_queue(project=project, kind="prompt_annotation", count=10)
    prompt_writing_queue(project=project, count=3)
    for prompt in project.prompts.order_by("-id")[:5]:
        outputs = [{"text": text, "model_name": "demo-canned"} for text in CANNED_OUTPUTS]
        comparison_create(project=project, prompt=prompt, outputs=outputs)


@transaction.atomic
def demo_load() -> dict[str, Any]:
    """Create the demo once. Returns the new users' passwords (only for users it created)."""
    ensure_role_groups()
    users = get_user_model()
    created: dict[str, str] = {}
    for username, roles in DEMO_USERS:
        if users.objects.filter(username=username).exists():
            continue
        password = secrets.token_urlsafe(9)
        user = users.objects.create_user(username=username, password=password)
        user_set_roles(user=user, roles=roles)
        created[username] = password
    model_versions_ensure_builtin()
    project = Project.objects.filter(slug="demo").first()
    prompts = 0
    if project is None:
        admin = users.objects.get(username="admin")
        project = project_create(
            user=admin, data={"name": "Demo assistant", "slug": "demo", "guidelines": GUIDELINES}
        )
        intake = PromptIntake(project=project, created_by=admin)
        prompts = len(intake.add(demo_rows()))
        _demo_work(project)
    return {"passwords": created, "project": project, "prompts": prompts}
