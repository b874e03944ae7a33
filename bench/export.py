"""Bench: export 20,000 rankings at K=9 (720,000 RM pairs) as JSONL in a child process.

Prints pairs/s and the child's peak RSS for the streamed export, and the same for a naive
baseline measured in the same run (rankings loaded with list(queryset), one query per ranking
for its completions, every row kept in memory, then dumped), on a subset of the rankings.
Targets: >= 50,000 pairs/s and < 300 MB peak RSS for the streamed export.

    .venv/bin/python bench/export.py [--rankings 20000] [--naive 2000]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._setup import django_setup, peak_rss_mb

K = 9
SLUG = "bench-export"
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "rivers",
    "sing",
    "to",
    "distant",
    "hills",
]


def build(rankings: int) -> int:
    """The bench project with `rankings` submitted rankings at K=9, built with bulk inserts."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from annotations.models import ComparisonTask, Completion, Project, Prompt, Ranking

    project = Project.objects.filter(slug=SLUG).first()
    if project and Ranking.objects.filter(task__project=project).count() == rankings:
        return project.pk
    if project:
        project.delete()
    started = time.perf_counter()
    labeler, _ = get_user_model().objects.get_or_create(username="bench-labeler")
    now = timezone.now()
    with transaction.atomic():
        project = Project.objects.create(name="Bench export", slug=SLUG)
        prompts = Prompt.objects.bulk_create(
            [
                Prompt(
                    project=project,
                    text=f"Prompt {i}: " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(16)),
                    source="customer" if i % 3 else "labeler",
                    customer_id=f"c{i % 500}",
                    split=("train", "train", "train", "valid", "test")[(i % 500) % 5],
                    dedup_key=f"bench-{i}",
                )
                for i in range(rankings)
            ],
            batch_size=5000,
        )
        tasks = ComparisonTask.objects.bulk_create(
            [ComparisonTask(project=project, prompt=p) for p in prompts], batch_size=5000
        )
        for start in range(0, len(tasks), 2000):
            Completion.objects.bulk_create(
                [
                    Completion(
                        comparison=task,
                        prompt_id=task.prompt_id,
                        model_name="bench",
                        position=k,
                        text=f"Answer {k} to {task.prompt_id}: "
                        + " ".join(WORDS[(k * 7 + j) % len(WORDS)] for j in range(30)),
                    )
                    for task in tasks[start : start + 2000]
                    for k in range(K)
                ],
                batch_size=5000,
            )
        ids: dict[int, list[int]] = {}
        for task_id, pk in Completion.objects.filter(comparison__project=project).values_list(
            "comparison_id", "pk"
        ):
            ids.setdefault(task_id, []).append(pk)
        Ranking.objects.bulk_create(
            [
                Ranking(
                    task=task,
                    labeler=labeler,
                    schema_version=1,
                    state="submitted",
                    groups=[[pk] for pk in sorted(ids[task.pk], reverse=bool(task.pk % 2))],
                    submitted_at=now,
                )
                for task in tasks
            ],
            batch_size=5000,
        )
    print(f"built {rankings} rankings x K={K} in {time.perf_counter() - started:.1f} s")
    return project.pk


def child_stream(project_id: int) -> dict:
    from annotations.models import Project
    from annotations.services.exports import export_create, export_delete, export_run

    project = Project.objects.get(pk=project_id)
    export = export_create(
        project=project, user=None, kind="rm_pairs", format="jsonl", filters={}, enqueue=False
    )
    started = time.perf_counter()
    export_run(job_id=export.job_id)
    seconds = time.perf_counter() - started
    export.refresh_from_db()
    size = sum(f["bytes"] for f in export.manifest["files"])
    export_delete(export=export)
    return {"pairs": export.row_count, "seconds": seconds, "rss_mb": peak_rss_mb(), "bytes": size}


def child_naive(project_id: int, limit: int, out: Path) -> dict:
    from annotations.domain.ranking import ranking_pairs
    from annotations.models import Ranking

    started = time.perf_counter()
    rankings = list(
        Ranking.objects.filter(task__project_id=project_id, state="submitted")
        .select_related("task__prompt")
        .order_by("task_id")[:limit]
    )
    rows = []
    for ranking in rankings:
        text = dict(ranking.task.completions.values_list("pk", "text"))  # a query per ranking
        for winner, loser in ranking_pairs(ranking.groups):
            rows.append(
                {
                    "prompt": ranking.task.prompt.text,
                    "chosen": text[winner],
                    "rejected": text[loser],
                    "split": ranking.task.prompt.split,
                }
            )
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    seconds = time.perf_counter() - started
    out.unlink()
    return {"pairs": len(rows), "seconds": seconds, "rss_mb": peak_rss_mb()}


def run_child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rankings", type=int, default=20_000)
    parser.add_argument("--naive", type=int, default=2_000, help="rankings in the baseline")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    django_setup()
    if args.child:
        from django.conf import settings

        if args.child[0] == "stream":
            result = child_stream(int(args.child[1]))
        else:
            out = Path(settings.MEDIA_ROOT) / "bench-naive.jsonl"
            out.parent.mkdir(parents=True, exist_ok=True)
            result = child_naive(int(args.child[1]), int(args.child[2]), out)
        print(json.dumps(result))
        return
    project_id = build(args.rankings)
    stream = run_child("stream", str(project_id))
    naive = run_child("naive", str(project_id), str(args.naive))
    stream_rate = stream["pairs"] / stream["seconds"]
    naive_rate = naive["pairs"] / naive["seconds"]
    print(
        f"streamed export: {stream['pairs']} pairs in {stream['seconds']:.2f} s = "
        f"{stream_rate:,.0f} pairs/s, {stream['bytes'] / 1e6:.0f} MB written, "
        f"child peak RSS {stream['rss_mb']:.0f} MB"
    )
    print(
        f"naive baseline ({args.naive} rankings, list(queryset) + a query per ranking, rows in "
        f"memory): {naive['pairs']} pairs in {naive['seconds']:.2f} s = {naive_rate:,.0f} "
        f"pairs/s, child peak RSS {naive['rss_mb']:.0f} MB"
    )
    print(
        f"ratio: {stream_rate / naive_rate:.1f}x the baseline's pairs/s; targets >= 50,000 "
        f"pairs/s ({'met' if stream_rate >= 50_000 else 'MISSED'}) and < 300 MB "
        f"({'met' if stream['rss_mb'] < 300 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
