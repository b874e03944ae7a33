"""Review: accept, reject with a comment, edit keeping the original; never one's own work."""

import pytest
from django.urls import reverse

from annotations.errors import ApplicationError
from annotations.models import Demonstration
from annotations.roles import Role
from annotations.services.demonstrations import demonstration_submit
from annotations.services.queue import task_claim_next
from annotations.services.reviews import demonstration_review
from tests.factories import UserFactory, WorkItemFactory
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db
ANNOTATION = {"category": "chat"}


def submitted(project, labeler, text="The labeler's answer"):
    token = task_claim_next(labeler=labeler, project=project).assignment.token
    demonstration, _ = demonstration_submit(
        labeler=labeler, token=token, text=text, annotation=ANNOTATION
    )
    return demonstration


def test_reject_needs_a_comment_and_the_labeler_sees_it(
    project, labeler, labeler_client, admin_user
):
    WorkItemFactory(project=project)
    demonstration = submitted(project, labeler)
    with pytest.raises(ApplicationError, match="Say why"):
        demonstration_review(
            demonstration_id=demonstration.pk, reviewer=admin_user, decision="reject"
        )
    home = labeler_client.get(reverse("labeler_home")).content.decode()
    assert "No reviews yet; 1 waiting for review." in home
    demonstration_review(
        demonstration_id=demonstration.pk,
        reviewer=admin_user,
        decision="reject",
        comment="Too short <em>really</em>",
    )
    home = labeler_client.get(reverse("labeler_home")).content.decode()
    assert "Rejected" in home and "Too short &lt;em&gt;really&lt;/em&gt;" in home
    assert "<strong>0%</strong> accepted" in home
    with pytest.raises(ApplicationError, match="rejected already"):
        demonstration_review(
            demonstration_id=demonstration.pk, reviewer=admin_user, decision="accept"
        )


def test_edit_keeps_the_original_and_accepts(project, labeler, admin_client_):
    WorkItemFactory(project=project)
    demonstration = submitted(project, labeler)
    url = reverse("review_detail", args=[demonstration.pk])
    assert b"The labeler&#x27;s answer" in admin_client_.get(url).content
    response = admin_client_.post(url, {"decision": "edit", "text": "A better answer"})
    assert response.status_code == 302
    demonstration.refresh_from_db()
    assert (demonstration.state, demonstration.text, demonstration.original_text) == (
        "accepted",
        "A better answer",
        "The labeler's answer",
    )


def test_reviewer_cannot_review_own_work(project):
    WorkItemFactory.create_batch(2, project=project)
    reviewer = UserFactory(roles=[Role.REVIEWER])
    other = UserFactory(roles=[Role.LABELER])
    own = submitted(project, reviewer)
    theirs = submitted(project, other)
    with pytest.raises(ApplicationError, match="your own"):
        demonstration_review(demonstration_id=own.pk, reviewer=reviewer, decision="accept")
    client = logged_in(reviewer)
    listing = client.get(reverse("review_list")).content.decode()
    assert f'href="/review/demonstrations/{theirs.pk}/"' in listing
    assert f'href="/review/demonstrations/{own.pk}/"' not in listing
    page = client.post(reverse("review_detail", args=[own.pk]), {"decision": "accept"})
    assert page.status_code == 400 and b"cannot review your own" in page.content
    assert Demonstration.objects.get(pk=own.pk).state == "submitted"
    client.post(reverse("review_detail", args=[theirs.pk]), {"decision": "accept"})
    assert Demonstration.objects.get(pk=theirs.pk).state == "accepted"


def test_labelers_cannot_review(project, labeler, labeler_client):
    WorkItemFactory(project=project)
    demonstration = submitted(project, UserFactory(roles=[Role.LABELER]))
    assert labeler_client.get(reverse("review_list")).status_code == 403
    assert labeler_client.get(reverse("review_detail", args=[demonstration.pk])).status_code == 403
    with pytest.raises(ApplicationError, match="may not review"):
        demonstration_review(demonstration_id=demonstration.pk, reviewer=labeler, decision="accept")
