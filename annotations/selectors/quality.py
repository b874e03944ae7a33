"""What admins watch: throughput per day, acceptance, time on task and inter-annotator agreement."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import combinations
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from annotations.domain.ranking import agreement_counts
from annotations.models import Demonstration, Project, Ranking
from annotations.models.labels import DemonstrationState, RankingState


@dataclass
class LabelerQuality:
    username: str
    rankings: int = 0
    demonstrations: int = 0
    accepted: int = 0
    rejected: int = 0
    ranking_seconds: list[float] = field(default_factory=list)
    agreed: int = 0
    shared: int = 0

    @property
    def acceptance(self) -> float | None:
        reviewed = self.accepted + self.rejected
        return self.accepted / reviewed if reviewed else None

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.shared if self.shared else None

    @property
    def median_ranking_seconds(self) -> float | None:
        values = sorted(self.ranking_seconds)
        return values[len(values) // 2] if values else None


def _agreement(project: Project, labelers: dict[int, LabelerQuality]) -> tuple[int, int]:
    """Agreement on every comparison two labelers share, per labeler and overall, reading only
    the rankings of tasks ranked by two or more labelers."""
    submitted = Ranking.objects.filter(task__project=project, state=RankingState.SUBMITTED)
    shared_tasks = submitted.values("task").annotate(n=Count("id")).filter(n__gte=2).values("task")
    by_task: dict[int, list[tuple[int, list]]] = defaultdict(list)
    rows = submitted.filter(task__in=shared_tasks).values_list("task_id", "labeler_id", "groups")
    for task_id, labeler_id, groups in rows.iterator(chunk_size=2000):
        by_task[task_id].append((labeler_id, groups))
    agreed_total = shared_total = 0
    for rankings in by_task.values():
        for (first, first_groups), (second, second_groups) in combinations(rankings, 2):
            agreed, shared = agreement_counts(first_groups, second_groups)
            agreed_total, shared_total = agreed_total + agreed, shared_total + shared
            for labeler_id in (first, second):
                if labeler_id in labelers:
                    labelers[labeler_id].agreed += agreed
                    labelers[labeler_id].shared += shared
    return agreed_total, shared_total


def project_quality(*, project: Project, days: int = 14) -> dict[str, Any]:
    """Per labeler: rankings and demonstrations submitted, acceptance, median time per ranking,
    agreement with the others; overall agreement; submissions per day over `days` days."""
    since = timezone.now() - timedelta(days=days)
    labelers: dict[int, LabelerQuality] = {}

    def labeler(pk: int, username: str) -> LabelerQuality:
        return labelers.setdefault(pk, LabelerQuality(username=username))

    rankings = Ranking.objects.filter(task__project=project, state=RankingState.SUBMITTED)
    for pk, username, spent in rankings.values_list(
        "labeler_id", "labeler__username", "time_spent_ms"
    ).iterator(chunk_size=5000):
        entry = labeler(pk, username)
        entry.rankings += 1
        if spent:
            entry.ranking_seconds.append(spent / 1000)
    demonstrations = (
        Demonstration.objects.filter(prompt__project=project)
        .exclude(state=DemonstrationState.DRAFT)
        .values("labeler_id", "labeler__username")
        .annotate(
            n=Count("id"),
            accepted=Count("id", filter=Q(state=DemonstrationState.ACCEPTED)),
            rejected=Count("id", filter=Q(state=DemonstrationState.REJECTED)),
        )
    )
    for row in demonstrations:
        entry = labeler(row["labeler_id"], row["labeler__username"])
        entry.demonstrations, entry.accepted, entry.rejected = (
            row["n"],
            row["accepted"],
            row["rejected"],
        )
    agreed, shared = _agreement(project, labelers)
    return {
        "labelers": sorted(labelers.values(), key=lambda entry: entry.username),
        "agreement": agreed / shared if shared else None,
        "shared_comparisons": shared,
        "per_day": _per_day(project=project, since=since, days=days),
    }


def _per_day(*, project: Project, since: Any, days: int) -> dict[str, list]:
    """Submissions per day (rankings, demonstrations), every day of the window listed."""
    ranking_days = dict(
        Ranking.objects.filter(
            task__project=project, state=RankingState.SUBMITTED, submitted_at__gte=since
        )
        .annotate(day=TruncDate("submitted_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    demonstration_days = dict(
        Demonstration.objects.filter(prompt__project=project, submitted_at__gte=since)
        .exclude(state=DemonstrationState.DRAFT)
        .annotate(day=TruncDate("submitted_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    today = timezone.now().date()
    window = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    return {
        "days": [day.isoformat() for day in window],
        "rankings": [ranking_days.get(day, 0) for day in window],
        "demonstrations": [demonstration_days.get(day, 0) for day in window],
    }
