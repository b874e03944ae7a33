"""The quality page: agreement between labelers, acceptance, time, throughput per day."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotations.roles import Role
from annotations.selectors.quality import project_quality
from tests.factories import (
    ComparisonTaskFactory,
    DemonstrationFactory,
    RankingFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def rank(task, labeler, order):
    return RankingFactory(task=task, labeler=labeler, order=order, time_spent_ms=30_000)


def test_agreement_acceptance_and_throughput(project):
    alice, bob, carol = (
        UserFactory(username=n, roles=[Role.LABELER]) for n in ("alice", "bob", "carol")
    )
    first, second = ComparisonTaskFactory.create_batch(2, project=project)
    rank(first, alice, [[0], [1], [2], [3]])
    rank(first, bob, [[0], [1], [3], [2]])  # 5 of 6 pairs agree with alice
    rank(second, alice, [[0, 1], [2], [3]])
    rank(second, carol, [[0, 1], [2], [3]])  # all 6 agree, the tie included
    prompt = project.prompts.first()
    DemonstrationFactory(prompt=prompt, labeler=bob, state="accepted")
    DemonstrationFactory(prompt=prompt, labeler=carol, state="rejected")
    quality = project_quality(project=project, days=7)
    by_name = {entry.username: entry for entry in quality["labelers"]}
    assert quality["shared_comparisons"] == 12
    assert quality["agreement"] == pytest.approx(11 / 12)
    assert by_name["alice"].agreement == pytest.approx(11 / 12)
    assert by_name["bob"].agreement == pytest.approx(5 / 6)
    assert by_name["carol"].agreement == 1.0
    assert (by_name["bob"].acceptance, by_name["carol"].acceptance) == (1.0, 0.0)
    assert by_name["alice"].median_ranking_seconds == 30
    assert quality["per_day"]["rankings"][-1] == 4
    assert quality["per_day"]["demonstrations"][-1] == 2
    assert len(quality["per_day"]["days"]) == 7


def test_quality_page_permissions_and_queries(
    admin_client_, engineer_client, labeler_client, project
):
    url = reverse("project_quality", args=["test"])
    assert labeler_client.get(url).status_code == 403
    assert b"Nobody has submitted work" in admin_client_.get(url).content
    assert admin_client_.get(url, {"days": "\u00b2"}).status_code == 200  # not a plain digit
    first, second = ComparisonTaskFactory.create_batch(2, project=project)
    labelers = [UserFactory(roles=[Role.LABELER]) for _ in range(2)]
    for labeler in labelers:
        rank(first, labeler, [[0], [1], [2], [3]])
    engineer_client.get(url)  # the engineer's roles are cached from here on
    with CaptureQueriesContext(connection) as few:
        page = engineer_client.get(url)
    assert b"of 6 comparisons that two labelers share" in page.content
    assert b'id="quality-data"' in page.content
    for labeler in [UserFactory(roles=[Role.LABELER]) for _ in range(5)]:
        rank(second, labeler, [[0], [1], [2], [3]])
    with CaptureQueriesContext(connection) as many:
        engineer_client.get(url)
    assert len(many) == len(few)
