"""The work queue on PostgreSQL: leases, skips, expiry, and many labelers at once."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotations.errors import ApplicationError
from annotations.models import Assignment, Demonstration, PromptAnnotation, WorkItem
from annotations.roles import Role
from annotations.services.demonstrations import demonstration_submit
from annotations.services.queue import (
    assignment_complete,
    assignment_release,
    assignment_skip,
    leases_expire,
    task_claim_next,
)
from tests.factories import ProjectFactory, UserFactory, WorkItemFactory
from tests.helpers import real_queries, token_client

pytestmark = pytest.mark.usefixtures("both_hot_paths")


def submit(labeler, project, **kwargs):
    claim = task_claim_next(labeler=labeler, project=project, **kwargs)
    if claim is None:
        return None
    with transaction.atomic():
        assignment_complete(assignment=claim.assignment)
    return claim.assignment


@pytest.mark.django_db
def test_claim_resume_submit_and_idempotence(project, labeler):
    items = WorkItemFactory.create_batch(2, project=project)
    first = task_claim_next(labeler=labeler, project=project)
    assert first is not None and not first.resumed
    again = task_claim_next(labeler=labeler, project=project)
    assert again.resumed and again.assignment.pk == first.assignment.pk
    with transaction.atomic():
        assert assignment_complete(assignment=first.assignment) is True
    with transaction.atomic():
        assert assignment_complete(assignment=first.assignment) is False  # submitted twice
    item = WorkItem.objects.get(pk=first.assignment.item_id)
    assert (item.done_count, item.active_leases, item.is_open) == (1, 0, False)
    second = task_claim_next(labeler=labeler, project=project)
    assert second.assignment.item_id == items[1].pk
    with transaction.atomic():
        assignment_complete(assignment=second.assignment)
    assert task_claim_next(labeler=labeler, project=project) is None


@pytest.mark.django_db
def test_required_labels_go_to_distinct_labelers(project):
    WorkItemFactory(project=project, required_labels=2)
    a, b, c = (UserFactory(roles=[Role.LABELER]) for _ in range(3))
    assert submit(a, project) is not None
    assert submit(a, project) is None  # never the same item twice
    assert submit(b, project) is not None
    assert submit(c, project) is None  # done by its two labelers
    assert WorkItem.objects.get().is_open is False


@pytest.mark.django_db
def test_skip_returns_item_to_others_not_to_the_skipper(project):
    WorkItemFactory(project=project)
    a, b = UserFactory(roles=[Role.LABELER]), UserFactory(roles=[Role.LABELER])
    claim = task_claim_next(labeler=a, project=project)
    with pytest.raises(ApplicationError, match="Say why"):
        assignment_skip(labeler=a, token=claim.assignment.token, reason="  ")
    skipped = assignment_skip(labeler=a, token=claim.assignment.token, reason="unclear prompt")
    assert (skipped.state, skipped.skip_reason) == ("skipped", "unclear prompt")
    assert task_claim_next(labeler=a, project=project) is None
    assert task_claim_next(labeler=b, project=project) is not None


@pytest.mark.django_db
def test_expired_lease_returns_work(project):
    WorkItemFactory(project=project)
    a, b = UserFactory(roles=[Role.LABELER]), UserFactory(roles=[Role.LABELER])
    claim = task_claim_next(labeler=a, project=project)
    assert task_claim_next(labeler=b, project=project) is None
    Assignment.objects.filter(pk=claim.assignment.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert task_claim_next(labeler=b, project=project) is None  # until beat returns it
    assert leases_expire() == 1
    taken = task_claim_next(labeler=b, project=project)
    assert taken is not None and taken.assignment.item_id == claim.assignment.item_id
    assert Assignment.objects.get(pk=claim.assignment.pk).state == "expired"
    with transaction.atomic():
        assignment_complete(assignment=taken.assignment)
    with pytest.raises(ApplicationError, match="lease on this task ran out"), transaction.atomic():
        assignment_complete(assignment=claim.assignment)
    assert WorkItem.objects.get().done_count == 1


@pytest.mark.django_db
def test_late_submit_accepted_while_item_still_needs_labels(project, labeler):
    WorkItemFactory(project=project)
    claim = task_claim_next(labeler=labeler, project=project)
    Assignment.objects.filter(pk=claim.assignment.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert leases_expire(project=project) == 1
    with transaction.atomic():
        assert assignment_complete(assignment=claim.assignment) is True
    item = WorkItem.objects.get()
    assert (item.done_count, item.active_leases, item.is_open) == (1, 0, False)


@pytest.mark.django_db
def test_admin_release(project, labeler):
    WorkItemFactory(project=project)
    claim = task_claim_next(labeler=labeler, project=project)
    assignment_release(assignment=claim.assignment)
    assert WorkItem.objects.get().active_leases == 0
    again = task_claim_next(labeler=labeler, project=project)
    assert again is not None and not again.resumed


@pytest.mark.django_db
def test_kind_priorities(project, labeler):
    annotation = WorkItemFactory(project=project, kind="prompt_annotation")
    demonstration = WorkItemFactory(project=project, prompt=annotation.prompt)
    claim = task_claim_next(labeler=labeler, project=project)
    assert claim.assignment.item_id == demonstration.pk  # demonstrations outrank annotation
    only = task_claim_next(
        labeler=UserFactory(roles=[Role.LABELER]), project=project, kinds=["prompt_annotation"]
    )
    assert only.assignment.item.kind == "prompt_annotation"


@pytest.mark.django_db
def test_claim_query_count_does_not_grow_with_the_queue(project, labeler):
    WorkItemFactory.create_batch(5, project=project)
    with CaptureQueriesContext(connection) as small:
        submit(labeler, project)
    WorkItemFactory.create_batch(500, project=project)
    with CaptureQueriesContext(connection) as large:
        submit(labeler, project)
    assert len(real_queries(large)) == len(real_queries(small))
    assert len(real_queries(small)) <= 9, real_queries(small)


# (claim, submit) statements through the API once the user's roles are cached: sql: token, user
# and roles; project; lock the labeler; live lease and kinds with open items; lease one item with
# its prompt || token, user and roles; lock; the assignment with item and project; schema and
# draft; complete, count and store. orm: the same one query at a time, trying the ranking kind
# first.
STATEMENTS = {"sql": (5, 5), "orm": (8, 9)}


@pytest.mark.django_db
def test_api_claim_and_submit_run_a_fixed_handful_of_statements(project, labeler, both_hot_paths):
    """The hot path through the API, statement by statement, on both implementations; none
    depends on the queue length."""
    path = both_hot_paths
    api = token_client(labeler)
    assert api.get("/api/v1/me/").status_code == 200  # caches the roles
    body = {"text": "An answer", "annotation": {"category": "open_qa", "pii": False}}
    counts = []
    for size in (3, 300):
        WorkItemFactory.create_batch(size, project=project)
        with CaptureQueriesContext(connection) as claimed:
            task = api.post(f"/api/v1/projects/{project.slug}/work/next/", {}, format="json")
        with CaptureQueriesContext(connection) as submitted:
            done = api.post(f"/api/v1/work/{task.json()['token']}/demonstration/", body, "json")
        assert done.status_code == 201, done.content
        counts.append((len(real_queries(claimed)), len(real_queries(submitted))))
    assert counts == [STATEMENTS[path]] * 2, "\n".join(
        real_queries(claimed) + real_queries(submitted)
    )
    assert Assignment.objects.filter(labeler=labeler, state="submitted").count() == 2


@pytest.mark.django_db(transaction=True)
def test_32_labelers_2000_items_each_done_by_exactly_its_labelers():
    project = ProjectFactory()
    WorkItemFactory.create_batch(1000, project=project, required_labels=1)
    WorkItemFactory.create_batch(1000, project=project, required_labels=2)
    labelers = [UserFactory(roles=[Role.LABELER]) for _ in range(32)]
    errors: list[BaseException] = []
    done: Counter = Counter()
    lock = threading.Lock()

    def work(labeler):
        try:
            while True:
                claim = task_claim_next(labeler=labeler, project=project)
                if claim is None:
                    return
                demonstration_submit(
                    labeler=labeler,
                    token=claim.assignment.token,
                    text=f"Answer by {labeler.pk}",
                    annotation={"category": "open_qa", "pii": False},
                )
                with lock:
                    done[(claim.assignment.item_id, labeler.pk)] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(labeler,)) for labeler in labelers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not errors, errors[:3]
    assert all(count == 1 for count in done.values()), "an item went twice to one labeler"
    per_item = Counter(item for item, _ in done)
    items = {item.pk: item for item in WorkItem.objects.filter(project=project)}
    assert len(items) == 2000
    assert all(per_item[pk] == item.required_labels for pk, item in items.items())
    assert all(
        item.done_count == item.required_labels and not item.is_open and item.active_leases == 0
        for item in items.values()
    )
    assert Assignment.objects.filter(item__project=project, state="submitted").count() == 3000
    assert Demonstration.objects.filter(prompt__project=project, state="submitted").count() == 3000


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submit_stores_one_demonstration():
    """Two submits of one live lease at once (a double click, a retry) make one demonstration,
    count the item once, and the second is told it was stored already."""
    project = ProjectFactory()
    WorkItemFactory(project=project, required_labels=2)
    labeler = UserFactory(roles=[Role.LABELER])
    token = task_claim_next(labeler=labeler, project=project).assignment.token
    results: list = []
    barrier = threading.Barrier(2)

    def submit_once(text):
        try:
            barrier.wait()
            results.append(
                demonstration_submit(
                    labeler=labeler,
                    token=token,
                    text=text,
                    annotation={"category": "open_qa", "pii": False},
                    time_spent_ms=1000,
                )[1]
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=submit_once, args=(t,)) for t in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    [demonstration] = Demonstration.objects.filter(labeler=labeler)
    assert demonstration.state == "submitted" and demonstration.time_spent_ms == 1000
    item = WorkItem.objects.get(project=project)
    assert (item.done_count, item.active_leases, item.is_open) == (1, 0, True)
    assert PromptAnnotation.objects.filter(labeler=labeler).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_late_submits_count_once():
    """Two late submits of one expired assignment (a double click) count it once."""
    project = ProjectFactory()
    WorkItemFactory(project=project, required_labels=3)
    labeler = UserFactory(roles=[Role.LABELER])
    claim = task_claim_next(labeler=labeler, project=project)
    Assignment.objects.filter(pk=claim.assignment.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    leases_expire(project=project)
    results: list = []
    barrier = threading.Barrier(2)

    def late_submit():
        try:
            barrier.wait()
            with transaction.atomic():
                results.append(assignment_complete(assignment=claim.assignment))
        finally:
            connection.close()

    threads = [threading.Thread(target=late_submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    item = WorkItem.objects.get(project=project)
    assert (item.done_count, item.active_leases) == (1, 0)


@pytest.mark.django_db(transaction=True)
def test_two_tabs_claiming_at_once_share_one_lease():
    """Two claims of one labeler at the same moment: the second waits for the first and resumes
    its lease; the item's lease counter counts one lease."""
    project = ProjectFactory()
    WorkItemFactory.create_batch(3, project=project, required_labels=2)
    labeler = UserFactory(roles=[Role.LABELER])
    claims: list = []
    barrier = threading.Barrier(2)

    def claim_once():
        try:
            barrier.wait()
            claims.append(task_claim_next(labeler=labeler, project=project))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({c.assignment.token for c in claims}) == 1
    assert sorted(c.resumed for c in claims) == [False, True]
    assert Assignment.objects.filter(labeler=labeler).count() == 1
    assert sum(item.active_leases for item in WorkItem.objects.filter(project=project)) == 1


@pytest.mark.django_db
def test_a_lease_that_expired_unreturned_is_not_leased_again_on_top(project, labeler):
    """A labeler's expired lease not yet returned (the return skips rows others hold) is not
    re-leased to the same labeler, which would count the item's lease twice."""
    WorkItemFactory(project=project, required_labels=2)
    first = task_claim_next(labeler=labeler, project=project).assignment
    Assignment.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # as if the return had skipped it (it skips rows others hold): this claim returns none
    from annotations.services import queue

    original, queue.REAP_BATCH = queue.REAP_BATCH, 0
    try:
        again = task_claim_next(labeler=labeler, project=project)
    finally:
        queue.REAP_BATCH = original
    assert again is None
    item = WorkItem.objects.get(project=project)
    assert item.active_leases == 1


@pytest.mark.django_db
def test_hot_statements_are_prepared_and_survive_a_session_reset(project, labeler):
    """psycopg prepares the repeated statements on the server; after DEALLOCATE ALL (what a
    pooler's reset runs) the next claims prepare them again, with no failed call."""
    WorkItemFactory.create_batch(8, project=project)
    for _ in range(4):
        assert submit(labeler, project) is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] > 0
        cursor.execute("DEALLOCATE ALL")
    for _ in range(4):
        assert submit(labeler, project) is not None
    assert Assignment.objects.filter(labeler=labeler, state="submitted").count() == 8


@pytest.mark.django_db(transaction=True)
def test_late_submit_waits_for_an_item_another_claim_holds_then_counts():
    """A late submit (the lease expired and was returned) while another transaction holds the
    item, as a claim does: the submit waits for it (no deadlock is possible: a labeler's own
    claims take the labeler's lock first, as submits do) and is counted once it is free."""
    project = ProjectFactory()
    WorkItemFactory(project=project, required_labels=2)
    labeler = UserFactory(roles=[Role.LABELER])
    token = task_claim_next(labeler=labeler, project=project).assignment.token
    Assignment.objects.filter(token=token).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert leases_expire(project=project) == 1
    item_id = WorkItem.objects.get(project=project).pk
    held, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def hold_item():
        try:
            with transaction.atomic():
                WorkItem.objects.select_for_update().get(pk=item_id)
                held.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def late_submit():
        try:
            answer = {"category": "open_qa", "pii": False}
            outcome["result"] = demonstration_submit(
                labeler=labeler, token=token, text="Late", annotation=answer
            )
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    holder = threading.Thread(target=hold_item)
    holder.start()
    assert held.wait(timeout=30)
    submitter = threading.Thread(target=late_submit)
    submitter.start()
    submitter.join(timeout=1.0)
    waited = submitter.is_alive()
    release.set()
    holder.join()
    submitter.join(timeout=30)
    assert waited, "the late submit should wait for the item while it is held"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"][1] is True
    item = WorkItem.objects.get(pk=item_id)
    assert (item.done_count, item.active_leases) == (1, 0)
    assert Demonstration.objects.get(labeler=labeler).state == "submitted"
