"""The ranking workspace pages: take the next comparison, rate and rank it, autosave, skip.

The page is a plain form (the rank groups travel in one hidden field that ranking.js keeps up
to date); a refused submission re-renders the page with every problem listed and nothing lost.
"""

import json
import re
from typing import Any

from django.contrib import messages
from django.http import HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotations.errors import ApplicationError, ErrorCode
from annotations.models.projects import WorkKind
from annotations.roles import require
from annotations.selectors.access import project_get_for_user, ranking_assignment_get_for_user
from annotations.selectors.rankings import (
    RankingAnswer,
    ranking_context,
    ranking_workspace,
    rankings_recent,
)
from annotations.services.queue import assignment_skip, task_claim_next
from annotations.services.rankings import ranking_draft_save, ranking_submit
from annotations.users import AuthedRequest

RATING_KEY = re.compile(r"^(likert|notes)-(\d+)$|^f-(\d+)-(\w+)$")


def answer_from_post(post: QueryDict) -> RankingAnswer:
    """The answer as the form sent it: `groups` (JSON), `likert-<id>`, `f-<id>-<field>`,
    `notes-<id>`, `none_acceptable`, `notes`, `time_spent_ms`. Validation is the service's."""
    try:
        groups = json.loads(post.get("groups") or "[]")
    except ValueError as exc:
        raise ApplicationError(
            "The ranking could not be read; reload the page and place the outputs again.",
            code=ErrorCode.INVALID_RANKING,
        ) from exc
    ratings: dict[str, dict[str, Any]] = {}
    for key in post:
        value = post.get(key, "")
        match = RATING_KEY.match(key)
        if match is None or value == "":
            continue
        kind, pk, field_pk, field = match.groups()
        rating = ratings.setdefault(pk or field_pk, {"likert": None, "fields": {}})
        if kind == "likert":
            rating["likert"] = int(value) if value.isascii() and value.isdigit() else value
        elif kind == "notes":
            rating["notes"] = value
        else:
            rating["fields"][field] = value
    elapsed = post.get("time_spent_ms", "")
    return RankingAnswer(
        groups=groups,
        ratings=ratings,
        none_acceptable=post.get("none_acceptable") == "on",
        notes=post.get("notes", ""),
        time_spent_ms=int(elapsed) if elapsed.isascii() and elapsed.isdigit() else 0,
    )


def _claim_and_go(request: AuthedRequest, project: Any) -> HttpResponse:
    claim = task_claim_next(labeler=request.user, project=project, kinds=[WorkKind.RANKING])
    if claim is None:
        messages.info(request, "No comparisons are waiting for you in this project.")
        return redirect("ranking_start", slug=project.slug)
    return redirect("ranking_page", token=claim.assignment.token)


@require("label")
def ranking_start(request: AuthedRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, action="label")
    if request.method == "POST":
        return _claim_and_go(request, project)
    recent = rankings_recent(labeler=request.user, project=project)
    return render(request, "ranking/start.html", {"project": project, "recent": recent})


def _render(request: AuthedRequest, context: Any, answer: Any = None, **extra: Any) -> HttpResponse:
    page = ranking_workspace(context=context, answer=answer)
    page["groups_json"] = json.dumps(page["answer"].groups)
    page.update(extra)
    error = extra.get("error")
    status = error.status_code if error is not None else 200
    return render(request, "ranking/workspace.html", page, status=status)


@require("label")
def ranking_page(request: AuthedRequest, token: str) -> HttpResponse:
    assignment = ranking_assignment_get_for_user(user=request.user, token=token)
    if request.method != "POST":
        return _render(request, ranking_context(assignment=assignment))
    try:
        answer = answer_from_post(request.POST)
    except ApplicationError as exc:
        return _render(request, ranking_context(assignment=assignment), error=exc)
    try:
        ranking = ranking_submit(assignment=assignment, labeler=request.user, answer=answer)
    except ApplicationError as exc:
        return _render(request, ranking_context(assignment=assignment), answer, error=exc)
    messages.success(
        request,
        f"Ranking {ranking.pk} saved. You can revise it for "
        f"{assignment.item.project.revision_window_minutes} minutes from the list on this page.",
    )
    return _claim_and_go(request, assignment.item.project)


@require_POST
@require("label")
def ranking_draft(request: AuthedRequest, token: str) -> HttpResponse:
    """Autosave: 204 when the draft is stored, else the one error shape as JSON."""
    assignment = ranking_assignment_get_for_user(user=request.user, token=token)
    try:
        answer = answer_from_post(request.POST)
        ranking_draft_save(assignment=assignment, labeler=request.user, answer=answer)
    except ApplicationError as exc:
        return JsonResponse(exc.as_dict(), status=exc.status_code)
    return HttpResponse(status=204)


@require_POST
@require("label")
def ranking_skip(request: AuthedRequest, token: str) -> HttpResponse:
    assignment = ranking_assignment_get_for_user(user=request.user, token=token)
    try:
        assignment_skip(
            labeler=request.user, token=assignment.token, reason=request.POST.get("reason", "")
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("ranking_page", token=assignment.token)
    return _claim_and_go(request, assignment.item.project)
