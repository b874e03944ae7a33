"""Every page for every role, generated from the URL conf: a page without a rule in PAGES, or one
that answers some role otherwise than its rule says (a crash included), fails here. The API has
its own tests (test_permissions.py, test_api.py)."""

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token

from annotations.roles import Role
from annotations.services.queue import task_claim_next
from tests.factories import (
    ComparisonTaskFactory,
    ConversationFactory,
    DemonstrationFactory,
    JobFactory,
    ModelVersionFactory,
    PromptAnnotationFactory,
    RankingFactory,
    UserFactory,
    WorkItemFactory,
)
from tests.helpers import logged_in, run_export

pytestmark = pytest.mark.django_db

ANONYMOUS, LABELER, REVIEWER, ADMIN, ENGINEER = (
    "anonymous",
    "labeler",
    "reviewer",
    "admin",
    "engineer",
)
ROLES = [ANONYMOUS, LABELER, REVIEWER, ADMIN, ENGINEER]
SIGNED_IN = {LABELER, REVIEWER, ADMIN, ENGINEER}
EVERYONE = {ANONYMOUS, *SIGNED_IN}
LABELERS = {LABELER, REVIEWER}  # a reviewer labels too
STAFF = {ADMIN, ENGINEER}
NOBODY: set[str] = set()

# Route name -> the roles that get the page (200). Everyone else is refused: anonymous users are
# sent to a login page, signed-in users get 403 or 404. Task tokens are the labeler's own.
PAGES: dict[str, set[str]] = {
    "home": SIGNED_IN,
    "login": EVERYONE,
    "logout": EVERYONE,
    "project_list": SIGNED_IN,
    "project_new": {ADMIN},
    "project_detail": SIGNED_IN,
    "project_edit": {ADMIN},
    "project_guidelines": SIGNED_IN,
    "project_quality": STAFF,
    "prompt_list": STAFF,
    "prompt_import": {ADMIN},
    "job_list": STAFF,
    "job_detail": STAFF,
    "job_cancel": STAFF,
    "job_rerun": {ADMIN},
    "labeler_home": LABELERS,
    "work_overview": {ADMIN},
    "task_page": {LABELER},
    "task_skip": {LABELER},
    "task_next": LABELERS,
    "work_admin": {ADMIN},
    "work_queue_prompts": {ADMIN},
    "work_queue_writing": {ADMIN},
    "work_priorities": {ADMIN},
    "lease_release": {ADMIN},
    "review_list": {REVIEWER, ADMIN},
    "review_detail": {REVIEWER, ADMIN},
    "ranking_start": LABELERS,
    "ranking_page": {LABELER},
    "ranking_draft": {LABELER},
    "ranking_skip": {LABELER},
    "model_list": STAFF,
    "model_register": {ENGINEER},
    "generation_new": STAFF,
    "outputs_import": STAFF,
    "export_list": STAFF,
    "export_detail": STAFF,
    "export_download": STAFF,
    "export_delete": STAFF,
    "training_list": STAFF,
    "training_new": {ENGINEER},
    # The Django admin: every page not named here is for admins only (ADMIN_SITE).
    "admin:login": {ANONYMOUS},
    "admin:autocomplete": NOBODY,  # answers only requests that name a field to complete
    "admin:view_on_site": NOBODY,  # no model has a page of its own to go to
    "admin:annotations_labelschema_delete": NOBODY,  # a schema version is never deleted alone
}
ADMIN_SITE = {ADMIN}

# Routes that take only POST: GET answers 405 to the roles in PAGES. The others are asked with a
# POST too, and refused (a route may check the method before the role: GET may be 405 for them).
POST_ONLY = {
    "logout",
    "admin:logout",
    "job_cancel",
    "job_rerun",
    "task_next",
    "task_skip",
    "work_queue_prompts",
    "work_queue_writing",
    "work_priorities",
    "lease_release",
    "ranking_draft",
    "ranking_skip",
    "export_delete",
}

# Answers that are neither the page nor a refusal: the Django admin sends an admin already signed
# in from its login page, and anyone signed out from its logout page, to its index.
OTHER = {("admin:login", ADMIN): 302, ("admin:logout", ANONYMOUS): 302}

LOGIN_PAGES = ("/login/", "/admin/login/")


@dataclass(frozen=True)
class Route:
    name: str  # namespace:name; "" for an unnamed route
    path: str
    params: tuple[str, ...]


def _walk(patterns: list, prefix: str, namespace: str) -> list[Route]:
    routes = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(n for n in (namespace, entry.namespace) if n)
            routes += _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or ""
            params = tuple(entry.pattern.regex.groupindex)
            routes.append(Route(name=name, path=prefix + str(entry.pattern), params=params))
    return routes


def page_routes() -> list[Route]:
    """Every route outside the API, less the admin's unnamed ones (redirects to named pages)."""
    return [
        route
        for route in _walk(get_resolver().url_patterns, "", "")
        if not route.path.startswith("api/")
        and not (route.path.startswith("admin/") and not route.name)
    ]


def allowed(name: str) -> set[str]:
    if name in PAGES:
        return PAGES[name]
    return ADMIN_SITE if name.startswith("admin:") else NOBODY


@dataclass
class Site:
    """One object of each kind a page names, made by the factories."""

    users: dict[str, Any]
    project: Any
    by_prefix: dict[str, Any]  # the pk or token of a route, by the first word of its name

    def kwargs(self, route: Route) -> dict[str, Any]:
        values = {}
        for param in route.params:
            if param == "slug":
                values[param] = self.project.slug
            elif param == "app_label":
                values[param] = "annotations"
            elif param == "content_type_id":
                values[param] = ContentType.objects.get_for_model(self.project).pk
            elif route.name.startswith("admin:"):
                values[param] = _admin_object(route.name, self.project).pk
            elif route.name.split("_")[0] in self.by_prefix:
                values[param] = self.by_prefix[route.name.split("_")[0]]
            else:
                raise AssertionError(f"{route.name}: which object is its {param}? Add it to site")
        return values


def _admin_object(name: str, project: Any) -> Any:
    if name == "admin:view_on_site":
        return project
    for model in admin.site._registry:
        if name.startswith(f"admin:{model._meta.app_label}_{model._meta.model_name}_"):
            found = model._default_manager.first()
            assert found is not None, f"{name}: make a {model.__name__} in the site fixture"
            return found
    raise AssertionError(f"{name}: which object does this admin page show?")


@pytest.fixture
def site(project, labeler, reviewer, admin_user, engineer) -> Site:
    item = WorkItemFactory(project=project)
    comparison = ComparisonTaskFactory(project=project)
    task = task_claim_next(labeler=labeler, project=project, kinds=["demonstration"])
    ranking = task_claim_next(labeler=labeler, project=project, kinds=["ranking"])
    author = UserFactory(roles=[Role.LABELER])
    demonstration = DemonstrationFactory(prompt=item.prompt, labeler=author)
    export = run_export(project, admin_user, kind="ppo_prompts")
    # the rest of what the Django admin lists
    RankingFactory(task=comparison, labeler=author)
    PromptAnnotationFactory(prompt=item.prompt, labeler=author)
    ConversationFactory(project=project, labeler=author)
    ModelVersionFactory()
    Token.objects.create(user=author)
    return Site(
        users={LABELER: labeler, REVIEWER: reviewer, ADMIN: admin_user, ENGINEER: engineer},
        project=project,
        by_prefix={
            "job": JobFactory(project=project, created_by=admin_user, state="running").pk,
            "export": export.pk,
            "review": demonstration.pk,
            "lease": task.assignment.pk,
            "task": task.assignment.token,
            "ranking": ranking.assignment.token,
        },
    )


def test_every_page_has_a_rule():
    names = {route.name for route in page_routes()}
    assert "" not in names, [route.path for route in page_routes() if not route.name]
    site_pages = {name for name in names if not name.startswith("admin:")}
    assert site_pages - set(PAGES) == set(), "add these pages to PAGES"
    assert set(PAGES) - names == set(), "these pages are gone: drop them from PAGES"
    assert POST_ONLY - names == set()


def _refused(role: str, response: Any) -> bool:
    if role == ANONYMOUS:
        return response.status_code == 302 and response["Location"].startswith(LOGIN_PAGES)
    return response.status_code in (403, 404)


def _problem(client: Client, role: str, route: Route, url: str) -> str | None:
    """What is wrong with the answers to this role, or None."""
    may = role in allowed(route.name)
    response = client.get(url)
    if response.streaming:
        b"".join(response.streaming_content)  # a download runs to its end
    status = response.status_code
    if (route.name, role) in OTHER:
        expected = OTHER[route.name, role]
        return None if status == expected else f"GET {status}, expected {expected}"
    if route.name in POST_ONLY:
        if may:
            return None if status == 405 else f"GET {status}, expected 405 (POST only)"
        if status != 405 and not _refused(role, response):
            return f"GET {status}, expected 405 or a refusal"
        response = client.post(url)
        return None if _refused(role, response) else f"POST {response.status_code}, not refused"
    if may:
        return None if status == 200 else f"GET {status}, expected 200"
    return None if _refused(role, response) else f"GET {status}, expected a refusal"


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role_as_its_rule_says(site, role):
    client = Client() if role == ANONYMOUS else logged_in(site.users[role])
    problems = []
    for route in page_routes():
        url = reverse(route.name, kwargs=site.kwargs(route))
        try:
            problem = _problem(client, role, route, url)
        except Exception as exc:  # a crash is a 500 for a real client
            problem = f"raised {exc!r}"
        if problem:
            problems.append(f"{route.name} {url}: {problem}")
    assert not problems, f"as {role}:\n" + "\n".join(problems)
