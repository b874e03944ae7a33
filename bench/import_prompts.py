"""Prompt import throughput and memory: 100,000 prompts with deduplication on.

Prints prompts/s and the importing process's peak RSS, and the same against a baseline measured in
this run: a row-by-row ORM import (one duplicate lookup, one cap count and one insert per row).
Targets: >= 5,000 prompts/s, < 300 MB peak RSS.

    .venv/bin/python bench/import_prompts.py [--rows 100000]
"""

import argparse
import json
import multiprocessing as mp
import random
import tempfile
import time
from pathlib import Path

from _setup import django_setup

WORDS = [
    "explain",
    "write",
    "summarize",
    "list",
    "compare",
    "describe",
    "translate",
    "poem",
    "story",
    "email",
    "plan",
    "recipe",
    "history",
    "science",
    "river",
    "city",
    "budget",
    "garden",
    "music",
    "robot",
    "ocean",
    "planet",
    "market",
    "lesson",
]


def make_file(path: Path, rows: int, *, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as out:
        for i in range(rows):
            if i and rng.random() < 0.05:  # 5% near-duplicates of an earlier prompt
                j = rng.randrange(i)
                text = f"Prompt {j}: " + " ".join(random.Random(j).choices(WORDS, k=30)) + " again"
            else:
                text = f"Prompt {i}: " + " ".join(random.Random(i).choices(WORDS, k=30))
            out.write(
                json.dumps(
                    {
                        "text": text,
                        "customer_id": f"cust-{rng.randrange(2000)}",
                        "category": rng.choice(["generation", "open_qa", "rewrite"]),
                    }
                )
                + "\n"
            )


def _fresh_project(slug: str):
    from annotations.models import Project
    from annotations.services.projects import project_create

    Project.objects.filter(slug=slug).delete()
    return project_create(
        user=None,
        data={
            "name": slug,
            "slug": slug,
            "dedup_prefix_chars": 40,
            "max_prompts_per_customer": 200,
        },
    )


def run_import(path: str, queue: mp.Queue) -> None:
    django_setup()
    from _setup import peak_rss_mb

    from annotations.services.prompts import prompt_import_file

    project = _fresh_project("bench-import")
    start = time.perf_counter()
    report = prompt_import_file(project=project, path=Path(path), fmt="jsonl", skip_invalid=False)
    seconds = time.perf_counter() - start
    queue.put({"seconds": seconds, "report": report, "rss_mb": peak_rss_mb()})


def run_baseline(path: str, rows: int, queue: mp.Queue) -> None:
    django_setup()
    from _setup import peak_rss_mb
    from django.db import transaction

    from annotations.intake.text import dedup_key, detect_pii, estimate_tokens
    from annotations.models import Prompt

    project = _fresh_project("bench-baseline")
    start = time.perf_counter()
    with transaction.atomic(), open(path) as lines:
        for count, line in enumerate(lines):
            if count >= rows:
                break
            row = json.loads(line)
            key = dedup_key(row["text"], 40)
            if Prompt.objects.filter(project=project, dedup_key=key).exists():
                continue
            if (
                Prompt.objects.filter(project=project, customer_id=row["customer_id"]).count()
                >= 200
            ):
                continue
            pii = detect_pii(row["text"])
            Prompt.objects.create(
                project=project,
                text=row["text"],
                customer_id=row["customer_id"],
                source="customer",
                category=row["category"],
                split="train",
                pii=bool(pii),
                pii_kinds=pii,
                token_count=estimate_tokens(row["text"]),
                dedup_key=key,
            )
    seconds = time.perf_counter() - start
    queue.put({"seconds": seconds, "rows": rows, "rss_mb": peak_rss_mb()})


def in_child(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prompts.jsonl"
        make_file(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        ours = in_child(run_import, str(path))
        base = in_child(run_baseline, str(path), args.baseline_rows)
    report = ours["report"]
    ours_rate = args.rows / ours["seconds"]
    base_rate = base["rows"] / base["seconds"]
    print(f"file: {args.rows:,} rows, {size_mb:.1f} MB")
    print(
        f"import:   {ours['seconds']:.2f} s, {ours_rate:,.0f} prompts/s, "
        f"peak RSS {ours['rss_mb']:.0f} MB"
        f" (imported {report['imported']:,}, duplicates {report['duplicates']:,}, "
        f"over cap {report['over_cap']:,}, PII removed {report['pii_removed_from_train']:,})"
    )
    print(
        f"baseline: {base['seconds']:.2f} s for {base['rows']:,} rows, {base_rate:,.0f} prompts/s, "
        f"peak RSS {base['rss_mb']:.0f} MB (row-by-row ORM)"
    )
    print(f"ratio: {ours_rate / base_rate:.1f}x prompts/s vs baseline")
    print(
        f"targets: >= 5,000 prompts/s [{'met' if ours_rate >= 5000 else 'MISSED'}], "
        f"< 300 MB peak RSS [{'met' if ours['rss_mb'] < 300 else 'MISSED'}]"
    )


if __name__ == "__main__":
    main()
