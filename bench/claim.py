"""Claim -> submit throughput through HTTP against a production-style server.

Starts gunicorn (labelapp.settings.test on PostgreSQL, its own bench database) on 127.0.0.1,
then runs 1 (baseline), 8 and 32 concurrent labelers, each a thread with its own HTTP session and
API token, doing claim -> submit for a bounded time. Prints cycles/s, p50/p95/p99 per request
type, duplicates (an item submitted twice by one labeler, or by more labelers than it needs),
and ratios against the 1-labeler baseline measured in this run.
Targets at 32 labelers: >= 100 cycles/s, p99 < 300 ms, zero duplicates.

    .venv/bin/python bench/claim.py [--seconds 20] [--workers 5] [--items 12000]
"""

import argparse
import os
import statistics
import threading
import time
from collections import Counter, defaultdict

os.environ.setdefault(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/labelapp_bench_claim"
)
from _setup import (
    BENCH_DB,
    CpuMeter,
    JsonClient,
    Variant,
    ab,
    django_setup,
    free_port,
    start_gunicorn,
    variants,
)

ANNOTATION = {"category": "open_qa", "flags": {"asks_advice": True}, "pii": False}
SLUG = "bench-claim"


def seed(items: int, labelers: int) -> list[str]:
    """A fresh project with `items` demonstration items; API tokens of `labelers` labelers."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotations.intake.pipeline import PromptIntake
    from annotations.intake.rows import PromptRow
    from annotations.models import Project
    from annotations.roles import Role, user_set_roles
    from annotations.services.projects import project_create
    from annotations.services.queue import work_items_create

    Project.objects.filter(slug=SLUG).delete()
    project = project_create(
        user=None, data={"name": SLUG, "slug": SLUG, "remove_pii_from_train": False}
    )
    rows = [
        PromptRow(line=i, text=f"Bench prompt number {i}: explain it", customer_id=f"c{i // 100}")
        for i in range(items)
    ]
    prompts = PromptIntake(project=project).add(rows)
    work_items_create(project=project, kind="demonstration", prompts=prompts)
    tokens = []
    User = get_user_model()
    for n in range(labelers):
        user, _ = User.objects.get_or_create(username=f"bench-labeler-{n}")
        user_set_roles(user=user, roles=[Role.LABELER])
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    return tokens


def run_phase(base: str, tokens: list[str], seconds: float, meter: CpuMeter) -> dict:
    latencies: dict[str, list[float]] = defaultdict(list)
    submitted: Counter = Counter()  # (item_id, labeler) -> 201 responses
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def labeler(index: int, token: str) -> None:
        local: dict[str, list[float]] = defaultdict(list)
        mine: Counter = Counter()
        http = JsonClient(base, token)
        body = {"text": f"Answer by {index}", "annotation": ANNOTATION}
        while time.monotonic() < stop:
            started = time.perf_counter()
            status, task = http.post(f"/api/v1/projects/{SLUG}/work/next/")
            local["claim"].append(time.perf_counter() - started)
            if status == 204:
                break
            if status != 200:
                errors.append(f"claim {status}: {str(task)[:200]}")
                break
            started = time.perf_counter()
            status, done = http.post(f"/api/v1/work/{task['token']}/demonstration/", body)
            local["submit"].append(time.perf_counter() - started)
            if status == 201:
                mine[(task["item_id"], index)] += 1
            elif status != 200:
                errors.append(f"submit {status}: {str(done)[:200]}")
                break
        http.close()
        with lock:
            for key, values in local.items():
                latencies[key] += values
            submitted.update(mine)

    threads = [threading.Thread(target=labeler, args=pair) for pair in enumerate(tokens)]
    meter.start()
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    cpu = meter.stop()
    per_item = Counter(item for item, _ in submitted)
    duplicates = sum(1 for n in submitted.values() if n > 1) + sum(
        1
        for n in per_item.values()
        if n > 1  # every bench item needs one labeler
    )
    return {
        "labelers": len(tokens),
        "cycles": sum(submitted.values()),
        "seconds": elapsed,
        "latencies": latencies,
        "duplicates": duplicates,
        "errors": errors,
        "cpu": cpu,
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def report(result: dict) -> float:
    rate = result["cycles"] / result["seconds"]
    print(
        f"{result['labelers']:>3} labelers: {result['cycles']:>6} cycles in "
        f"{result['seconds']:.1f} s = {rate:7.1f} cycles/s, duplicates {result['duplicates']}, "
        f"errors {len(result['errors'])}"
    )
    for kind in ("claim", "submit"):
        values = result["latencies"][kind]
        print(
            f"      {kind:<6} n={len(values):>6}  p50 {pct(values, 50):6.1f} ms  "
            f"p95 {pct(values, 95):6.1f} ms  p99 {pct(values, 99):6.1f} ms"
        )
    cycles = max(result["cycles"], 1)
    cpu = result["cpu"]
    print(
        "      CPU per cycle: "
        + ", ".join(f"{name} {seconds * 1000 / cycles:.1f} ms" for name, seconds in cpu.items())
        + f" (machine: {os.cpu_count()} cores)"
    )
    for error in result["errors"][:3]:
        print("      error:", error)
    return rate


def db_duplicates() -> int:
    """Items whose submitted assignments exceed what they need (checked in the database)."""
    from django.db.models import Count, F, Q

    from annotations.models import WorkItem

    return (
        WorkItem.objects.filter(project__slug=SLUG)
        .annotate(n=Count("assignments", filter=Q(assignments__state="submitted")))
        .filter(n__gt=F("required_labels"))
        .count()
    )


def compare(args: argparse.Namespace) -> None:
    """32 labelers against each side of the A/B (fresh items each phase), alternately."""
    from django.db import connection

    def phase(side: Variant) -> tuple[float, float]:
        tokens = seed(args.items, 32)
        connection.close()
        port = free_port()
        server = start_gunicorn(
            port=port, workers=args.workers, threads=args.threads, code=side.code, env=side.env
        )
        try:
            result = run_phase(
                f"http://127.0.0.1:{port}", tokens, args.seconds, CpuMeter(server.pid)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
        rate = report(result)
        print(f"      items over-submitted in the database: {db_duplicates()}")
        return rate, max(pct(result["latencies"][k], 99) for k in ("claim", "submit"))

    ab(variants(compare=args.compare, paths=args.paths), args.runs, phase)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--baseline-seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help=">1 uses gthread workers")
    parser.add_argument("--items", type=int, default=12000)
    parser.add_argument("--compare", metavar="REF", help="A/B against a git revision")
    parser.add_argument("--paths", action="store_true", help="A/B of the sql and orm hot paths")
    parser.add_argument("--runs", type=int, default=3, help="phases per side of an A/B")
    args = parser.parse_args()
    django_setup()
    if args.compare or args.paths:
        compare(args)
        return
    tokens = seed(args.items, 1 + 8 + 32)
    from django.db import connection

    connection.close()
    port = free_port()
    server = start_gunicorn(port=port, workers=args.workers, threads=args.threads)
    base = f"http://127.0.0.1:{port}"
    meter = CpuMeter(server.pid)
    kind = f"gthread x{args.threads}" if args.threads > 1 else "sync"
    print(f"gunicorn {args.workers} {kind} workers, {args.items} items, database {BENCH_DB}")
    try:
        baseline = report(run_phase(base, tokens[:1], args.baseline_seconds, meter))
        eight = report(run_phase(base, tokens[1:9], args.seconds, meter))
        thirty_two_result = run_phase(base, tokens[9:41], args.seconds, meter)
        thirty_two = report(thirty_two_result)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"ratios: 8 vs 1 = {eight / baseline:.2f}x, 32 vs 1 = {thirty_two / baseline:.2f}x, "
        f"32 vs 8 = {thirty_two / eight:.2f}x"
    )
    print(f"items over-submitted in the database: {db_duplicates()}")
    p99 = max(pct(thirty_two_result["latencies"][k], 99) for k in ("claim", "submit"))
    met = thirty_two >= 100 and p99 < 300 and thirty_two_result["duplicates"] == 0
    print(
        f"target at 32 (>= 100 cycles/s, p99 < 300 ms, 0 duplicates): {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
